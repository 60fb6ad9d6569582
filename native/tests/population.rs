//! The LeNet-5 population: a member trained among others gives the same bits as trained alone,
//! and its hand-written forward and backward train the same weights as the candle model built
//! from the built-in `lenet5` spec, trained by `train::train_epoch` (an independent path: candle
//! autograd over wna's conv, pool and linear kernels).

use wna::confidence::population::init::Init;
use wna::confidence::population::{lenet, Member, Optimizer, Population, PopulationOptions};
use wna::model::Model;
use wna::optim::Kind;
use wna::progress::Progress;
use wna::spec::NetSpec;
use wna::train::{train_epoch, TrainConfig};

fn lenet5() -> NetSpec {
    wna::models::builtin::spec("lenet5", lenet::CLASSES, None).unwrap()
}

/// Random images, each with a bright 4 x 4 patch whose place is its label (a learnable signal).
fn data(n: usize) -> (Vec<f32>, Vec<u8>) {
    let mut pixels = vec![0f32; n * 784];
    wna::philox::Philox::new(11, 0, 0).fill_uniform(&mut pixels);
    let labels: Vec<u8> = (0..n).map(|i| (i * 7 % 10) as u8).collect();
    for (img, &y) in pixels.chunks_mut(784).zip(&labels) {
        let (top, left) = (2 + 5 * (y as usize % 5), 4 + 12 * (y as usize / 5));
        for r in top..top + 4 {
            img[r * 28 + left..][..4].iter_mut().for_each(|v| *v += 1.0);
        }
    }
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
        let mut model = Model::new(lenet5(), candle_core::Device::Cpu, 0, 0.0, 1.0)?;
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
        // Two epochs of 4 steps in f32 through different summation orders. Adam divides each
        // gradient by its own running scale, so where a gradient is nearly zero a rounding
        // difference becomes a step of up to lr: its bound is looser.
        let bound = if optimizer == Optimizer::Adam {
            1e-3
        } else {
            1e-4
        };
        assert!(
            worst < bound,
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
    let model = Model::new(lenet5(), candle_core::Device::Cpu, 0, 0.0, 1.0)?;
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

#[test]
fn pairs_pick_label_and_score_the_images() -> wna::Result<()> {
    use wna::confidence::pairs::{pairs, PairOptions};
    let (pixels, labels) = data(600);
    let mut pop = Population::new(PopulationOptions {
        seed: 2,
        batch_size: 32,
        members: vec![member(Optimizer::Adam, 5e-3, 0.0, Init::Default)],
    })?;
    for epoch in 0..3 {
        pop.train_epoch(&pixels, &labels, epoch, Progress::default())?;
    }
    let path = std::env::temp_dir().join(format!("wna-pairs-{}", std::process::id()));
    pop.save(0, path.to_str().unwrap())?;
    let (test, test_labels) = (&pixels[..400 * 784], &labels[..400]);
    let (reference, reference_labels) = (&pixels[400 * 784..], &labels[400..]);
    let options = |noise_std| PairOptions {
        weights: path.to_str().unwrap().into(),
        per_digit: 3,
        copies: 20,
        noise_std,
        noise_seed: 7,
        trust_k: 2,
    };
    let run = |std| {
        pairs(
            &options(std),
            (test, test_labels),
            (reference, reference_labels),
            Progress::default(),
        )
    };
    let a = run(0.9)?;
    let get = |name: &str| a.get(name).unwrap().1.clone();
    let (ids, correct, ratio) = (get("imageId"), get("correct"), get("ratio"));
    // The first 3 right and 3 wrong of each digit, in test order, checked against a direct scan.
    let predictions = pop.evaluate(test, test_labels, Progress::default())?;
    assert!(
        (predictions[0].accuracy - a.summary("testAccuracy").unwrap().as_f64().unwrap()).abs()
            < 1e-6
    );
    let mut seen = std::collections::HashMap::new();
    for (&id, &c) in ids.iter().zip(&correct) {
        let digit = test_labels[id as usize];
        *seen.entry((digit, c as u8)).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&count| count <= 3));
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "images in test order");
    assert!(ratio.iter().all(|r| (0.0..=1.0).contains(r)));
    let prediction = get("prediction");
    assert!(
        ratio.iter().any(|&r| r < 1.0),
        "noise of std 0.9 never changed a prediction: {prediction:?} {ratio:?}"
    );
    // Without noise every copy is the clean image: every ratio is exactly 1.
    let still = run(0.0)?;
    assert!(still.get("ratio").unwrap().1.iter().all(|&r| r == 1.0));
    // The data flow's last layer is the logits: its argmax is the prediction.
    let fc3 = get("fc3");
    for (z, &p) in fc3.chunks(10).zip(&prediction) {
        assert_eq!(lenet::argmax(z), p as usize);
    }
    assert!(get("maxSoftmax").iter().all(|&p| (0.1..=1.0).contains(&p)));
    assert!(get("trust").iter().all(|&t| t > 0.0 && t.is_finite()));
    std::fs::remove_file(&path).ok();
    Ok(())
}
