//! The LeNet-5 population: a member trained among others gives the same bits as trained alone,
//! and its hand-written forward and backward train the same weights as the candle model built
//! from `lenet::spec()`, trained by `train::train_epoch` (an independent path: candle autograd
//! over wna's conv, pool and linear kernels).

use wna::model::Model;
use wna::optim::Kind;
use wna::population::init::Init;
use wna::population::{lenet, Member, Optimizer, Population, PopulationOptions};
use wna::progress::Progress;
use wna::train::{train_epoch, TrainConfig};

/// Random images and labels that depend on the images (a learnable signal).
fn data(n: usize) -> (Vec<f32>, Vec<u8>) {
    let mut pixels = vec![0f32; n * 784];
    wna::philox::Philox::new(11, 0, 0).fill_uniform(&mut pixels);
    let labels = pixels
        .chunks(784)
        .map(|img| ((img[300] + img[400]) * 5.0) as u8 % 10)
        .collect();
    (pixels, labels)
}

fn member(optimizer: Optimizer, lr: f64, weight_decay: f64, init: Init) -> Member {
    Member {
        optimizer,
        lr,
        weight_decay,
        init,
    }
}

fn members() -> Vec<Member> {
    vec![
        member(Optimizer::Sgd, 0.05, 0.0, Init::Default),
        member(Optimizer::Adam, 5e-3, 0.05, Init::XavierUniform),
        member(Optimizer::Sgd, 0.1, 0.2, Init::KaimingUniform),
        member(Optimizer::Adam, 1e-2, 0.0, Init::Normal),
        // Diverges: its weights turn NaN, as PyTorch's would.
        member(Optimizer::Sgd, 1e6, 0.0, Init::KaimingUniform),
    ]
}

#[test]
fn a_member_trains_the_same_alone_as_in_a_population() -> wna::Result<()> {
    let (pixels, labels) = data(300);
    let options = |members| PopulationOptions {
        seed: 3,
        batch_size: 32, // 300 = 9 x 32 + 12: the short last batch is trained too
        members,
    };
    let mut together = Population::new(options(members()))?;
    for epoch in 0..2 {
        together.train_epoch(&pixels, &labels, epoch, Progress::default())?;
    }
    for (i, m) in members().into_iter().enumerate() {
        let mut alone = Population::new(options(vec![m]))?;
        for epoch in 0..2 {
            alone.train_epoch(&pixels, &labels, epoch, Progress::default())?;
        }
        let (a, b) = (alone.params(0)?, together.params(i)?);
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "member {i} differs between alone and in the population"
        );
        let finite = a.iter().all(|v| v.is_finite());
        assert_eq!(finite, i != 4, "member {i}: finite weights {finite}");
    }
    Ok(())
}

#[test]
fn matches_the_candle_model_trained_by_train_epoch() -> wna::Result<()> {
    let (pixels, labels) = data(256);
    let cases = [
        (
            Optimizer::Sgd,
            Kind::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            0.05,
            0.01,
        ),
        // candle's trainer runs AdamW; with no weight decay it is Adam.
        (Optimizer::Adam, Kind::ADAM, 2e-3, 0.0),
    ];
    let dir = std::env::temp_dir().join(format!("wna-population-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (optimizer, kind, lr, weight_decay) in cases {
        let m = member(optimizer, lr, weight_decay, Init::Default);
        let mut pop = Population::new(PopulationOptions {
            seed: 8,
            batch_size: 64,
            members: vec![m],
        })?;
        let start = dir.join("start.safetensors");
        pop.save(0, start.to_str().unwrap())?;
        let mut model = Model::new(lenet::spec(), candle_core::Device::Cpu, 0, 0.0, 1.0)?;
        model.load(start.to_str().unwrap())?;
        for epoch in 0..2 {
            let ours = pop.train_epoch(&pixels, &labels, epoch, Progress::default())?;
            let cfg = TrainConfig {
                batch_size: 64,
                lr_max: lr,
                lr_min: lr,
                weight_decay,
                total_steps: 8,
                optimizer: kind,
                seed: 8,
                epoch,
                mixup: false,
            };
            let theirs = train_epoch(&mut model, &pixels, &labels, &cfg, Progress::default())?;
            assert!(
                (ours[0].loss - theirs.loss).abs() < 1e-4,
                "{optimizer:?} epoch {epoch}: loss {} vs candle's {}",
                ours[0].loss,
                theirs.loss
            );
        }
        let end = dir.join("end.safetensors");
        pop.save(0, end.to_str().unwrap())?;
        let trained = candle_core::safetensors::load(&end, &candle_core::Device::Cpu)?;
        let mut worst = 0f32;
        for (name, var) in model.trainable() {
            let a = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let b = trained[&name].flatten_all()?.to_vec1::<f32>()?;
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (x, y) in a.iter().zip(&b) {
                worst = worst.max((x - y).abs() / scale);
            }
        }
        // Two epochs of 4 steps in f32 through different summation orders.
        assert!(
            worst < 1e-4,
            "{optimizer:?}: worst relative difference {worst}"
        );
        assert!(
            worst > 0.0 || optimizer == Optimizer::Sgd,
            "suspiciously identical"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn evaluate_agrees_with_the_candle_model() -> wna::Result<()> {
    let (pixels, labels) = data(600);
    let mut pop = Population::new(PopulationOptions {
        seed: 1,
        batch_size: 50,
        members: members()[..2].to_vec(),
    })?;
    pop.train_epoch(&pixels, &labels, 0, Progress::default())?;
    let ours = pop.evaluate(&pixels, &labels, Progress::default())?;
    let path = std::env::temp_dir().join(format!("wna-population-eval-{}", std::process::id()));
    pop.save(1, path.to_str().unwrap())?;
    let model = Model::new(lenet::spec(), candle_core::Device::Cpu, 0, 0.0, 1.0)?;
    model.load(path.to_str().unwrap())?;
    let theirs = wna::train::evaluate(&model, &pixels, &labels, Progress::default())?;
    std::fs::remove_file(&path).ok();
    assert!((ours[1].accuracy - theirs.accuracy).abs() < 1e-9);
    assert!((ours[1].loss - theirs.loss).abs() < 1e-4);
    Ok(())
}

#[test]
fn bad_input_is_named() {
    let bad = Population::new(PopulationOptions {
        seed: 0,
        batch_size: 32,
        members: vec![member(Optimizer::Sgd, -1.0, 0.0, Init::Default)],
    });
    assert!(bad.is_err_and(|e| e.to_string().contains("lr must be > 0")));
    let mut pop = Population::new(PopulationOptions {
        seed: 0,
        batch_size: 32,
        members: members()[..1].to_vec(),
    })
    .unwrap();
    let e = pop
        .train_epoch(&[0.0; 784], &[12], 0, Progress::default())
        .unwrap_err();
    assert!(e.to_string().contains("label 12 out of range"), "{e}");
}
