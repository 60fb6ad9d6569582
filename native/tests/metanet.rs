//! The meta-networks learn a planted signal: a ratio that is a smooth function of three
//! data-flow values in three different layers, and the right/wrong label cut from it.

use wna::confidence::metanet::{fit, MetaKind, MetaOptions, MetaTask, FEATURES};
use wna::progress::Progress;

fn planted(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = vec![0f32; n * FEATURES];
    wna::philox::Philox::new(3, 0, 0).fill_normal(&mut x, 0.0, 1.0);
    // Unequal scales, as the layers of a real classifier have: standardisation must cope.
    for row in x.chunks_mut(FEATURES) {
        row[256..376].iter_mut().for_each(|v| *v *= 40.0);
    }
    let y = x
        .chunks(FEATURES)
        .map(|r| {
            let z = 1.5 * r[3] - r[300] / 40.0 + r[465];
            1.0 / (1.0 + (-z).exp())
        })
        .collect();
    (x, y)
}

fn options(kind: MetaKind, task: MetaTask) -> MetaOptions {
    MetaOptions {
        kind,
        task,
        width: 32,
        layers: 2,
        heads: 4,
        feed_forward: 64,
        epochs: 10,
        batch_size: 64,
        lr: Some(3e-3),
        seed: 1,
    }
}

#[test]
fn every_kind_learns_a_planted_ratio_and_label() -> wna::Result<()> {
    let (x, y) = planted(5000);
    let train: Vec<u32> = (0..4400).collect();
    let test: Vec<u32> = (4400..5000).collect();
    let truth: Vec<f32> = test.iter().map(|&i| y[i as usize]).collect();
    let mean = truth.iter().sum::<f32>() / truth.len() as f32;
    let sst: f32 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    for kind in [MetaKind::Rnn, MetaKind::Lstm, MetaKind::Transformer] {
        let p = fit(
            &options(kind, MetaTask::Regression),
            &x,
            &y,
            &train,
            &test,
            Progress::default(),
        )?;
        let sse: f32 = p.iter().zip(&truth).map(|(p, t)| (p - t).powi(2)).sum();
        let r2 = 1.0 - sse / sst;
        assert!(r2 > 0.9, "{kind:?}: r^2 {r2}");
        let labels: Vec<f32> = y.iter().map(|&v| f32::from(u8::from(v > 0.5))).collect();
        let p = fit(
            &options(kind, MetaTask::Classification),
            &x,
            &labels,
            &train,
            &test,
            Progress::default(),
        )?;
        let right = p
            .iter()
            .zip(&test)
            .filter(|(p, &i)| (**p > 0.5) == (labels[i as usize] > 0.5))
            .count();
        let accuracy = right as f32 / test.len() as f32;
        // A hard boundary through noise-free data: the errors are the pairs nearest it.
        assert!(
            accuracy > 0.85,
            "{kind:?}: accuracy {accuracy} (chance: 0.5)"
        );
        assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    Ok(())
}

#[test]
fn the_same_seed_gives_the_same_predictions() -> wna::Result<()> {
    let (x, y) = planted(600);
    let (train, test): (Vec<u32>, Vec<u32>) = ((0..500).collect(), (500..600).collect());
    let mut o = options(MetaKind::Lstm, MetaTask::Regression);
    o.epochs = 1;
    let a = fit(&o, &x, &y, &train, &test, Progress::default())?;
    let b = fit(&o, &x, &y, &train, &test, Progress::default())?;
    assert_eq!(a, b);
    o.seed = 2;
    assert_ne!(a, fit(&o, &x, &y, &train, &test, Progress::default())?);
    Ok(())
}

#[test]
fn bad_rows_are_named() {
    let (x, y) = planted(10);
    let o = options(MetaKind::Rnn, MetaTask::Regression);
    let e = fit(&o, &x, &y, &[0, 1], &[42], Progress::default()).unwrap_err();
    assert!(e.to_string().contains("row 42 out of range"), "{e}");
}

#[test]
fn the_transformer_defaults_to_a_lower_learning_rate() {
    let parse = |json: &str| {
        serde_json::from_str::<MetaOptions>(json)
            .unwrap()
            .learning_rate()
    };
    assert_eq!(parse(r#"{"kind":"lstm","task":"regression"}"#), 1e-3);
    assert_eq!(parse(r#"{"kind":"rnn","task":"classification"}"#), 1e-3);
    assert_eq!(
        parse(r#"{"kind":"transformer","task":"classification"}"#),
        1e-4
    );
    assert_eq!(
        parse(r#"{"kind":"transformer","task":"regression","lr":0.01}"#),
        0.01
    );
}
