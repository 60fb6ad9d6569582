//! The same seed trains the same weights, bit for bit, on the CPU.

use wna::model::Model;
use wna::models::builtin;
use wna::optim::Kind;
use wna::progress::Progress;
use wna::train::{train_epoch, TrainConfig};

fn trained_weights(name: &str) -> wna::Result<Vec<(String, Vec<f32>)>> {
    let n = 384;
    let mut pixels = vec![0f32; n * 784];
    wna::philox::Philox::new(5, 0, 0).fill_uniform(&mut pixels);
    let labels: Vec<u8> = (0..n).map(|i| (i * 7 % 10) as u8).collect();
    let blocks = (name == "larger").then_some([1, 1, 1, 1]);
    let spec = builtin::spec(name, 10, blocks)?;
    let mut model = Model::new(spec, candle_core::Device::Cpu, 9, 0.1307, 0.3081)?;
    let cfg = TrainConfig {
        batch_size: 64,
        lr_max: 1e-3,
        lr_min: 1e-5,
        weight_decay: 1e-4,
        total_steps: 6,
        optimizer: Kind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 4,
        epoch: 0,
        mixup: false,
    };
    train_epoch(&mut model, &pixels, &labels, &cfg, Progress::default())?;
    let mut out = Vec::new();
    for (name, var) in model.trainable() {
        out.push((name, var.as_tensor().flatten_all()?.to_vec1::<f32>()?));
    }
    Ok(out)
}

#[test]
fn same_seed_same_weights() -> wna::Result<()> {
    for name in ["smaller", "larger", "n1"] {
        let (a, b) = (trained_weights(name)?, trained_weights(name)?);
        assert_eq!(a.len(), b.len());
        for ((na, va), (_, vb)) in a.iter().zip(&b) {
            assert!(
                va == vb,
                "{name}: {na} differs between two runs with the same seed"
            );
        }
    }
    Ok(())
}
