//! Times `smaller`/`larger` training steps and inference on random data with wna's CPU kernels
//! and, with `WNA_CANDLE_OPS=raw`, with candle's own ops: `cargo run --release --example speed`.

use std::time::Instant;
use wna::model::Model;
use wna::models::builtin;
use wna::optim::Kind;
use wna::progress::Progress;
use wna::train::{train_epoch, TrainConfig};

fn main() -> wna::Result<()> {
    let n = 2048;
    let mut pixels = vec![0f32; n * 784];
    wna::philox::Philox::new(1, 0, 0).fill_uniform(&mut pixels);
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names = if names.is_empty() {
        vec!["smaller".into(), "larger".into()]
    } else {
        names
    };
    for name in &names {
        let spec = builtin::spec(name, 10, None)?;
        let mut model = Model::new(spec, candle_core::Device::Cpu, 0, 0.1307, 0.3081)?;
        let x = model.input(&pixels[..1000 * 784])?;
        model.logits(&x)?;
        let t = Instant::now();
        model.logits(&x)?;
        let infer = 1000.0 / t.elapsed().as_secs_f64();
        let cfg = TrainConfig {
            batch_size: 128,
            lr_max: 1e-3,
            lr_min: 1e-5,
            weight_decay: 1e-4,
            total_steps: 100,
            optimizer: Kind::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            seed: 0,
            epoch: 0,
            mixup: false,
        };
        let t = Instant::now();
        train_epoch(&mut model, &pixels, &labels, &cfg, Progress::default())?;
        let train = n as f64 / t.elapsed().as_secs_f64();
        println!("{name}: inference {infer:.0} images/s, training {train:.0} images/s");
    }
    Ok(())
}
