//! The GAN's pieces: generator and discriminator specs, nearest upsampling forward and backward
//! against direct loops, the logit cross-entropy against its formula, the Frechet distance
//! against closed forms, and a training epoch that moves both networks reproducibly.

use candle_core::{Device, Tensor, Var};
use wna::gan::frechet::frechet_distance;
use wna::gan::{self, bce_with_logits, GanConfig};
use wna::model::Model;
use wna::models::network::upsample_nearest;
use wna::spec::NetSpec;

type R = wna::Result<()>;

fn spec(json: &str) -> NetSpec {
    serde_json::from_str(json).expect("valid spec JSON")
}

const GENERATOR: &str = r#"{"name": "g", "input": [8], "output": "image", "layers": [
    {"kind": "linear", "name": "fc", "out": 196}, {"kind": "leaky_relu", "slope": 0.2},
    {"kind": "reshape", "shape": [4, 7, 7]}, {"kind": "upsample", "scale": 2},
    {"kind": "conv2d", "name": "c1", "out": 4, "kernel": 3, "padding": 1},
    {"kind": "batch_norm", "name": "bn"}, {"kind": "relu"},
    {"kind": "upsample", "scale": 2},
    {"kind": "conv2d", "name": "c2", "out": 1, "kernel": 3, "padding": 1}, {"kind": "tanh"}]}"#;

const DISCRIMINATOR: &str = r#"{"name": "d", "output": "score", "layers": [
    {"kind": "flatten"}, {"kind": "linear", "name": "fc1", "out": 32},
    {"kind": "leaky_relu", "slope": 0.2}, {"kind": "dropout", "p": 0.3},
    {"kind": "linear", "name": "fc2", "out": 1}]}"#;

#[test]
fn generator_and_discriminator_specs_check_their_ends() {
    let shapes = spec(GENERATOR).shapes().expect("the generator is valid");
    assert_eq!(shapes[2], vec![4, 7, 7]);
    assert_eq!(shapes[3], vec![4, 14, 14]);
    assert_eq!(shapes.last().unwrap(), &vec![1, 28, 28]);
    assert_eq!(
        spec(DISCRIMINATOR).shapes().unwrap().last().unwrap(),
        &vec![1]
    );
    let error = |json: &str| spec(json).shapes().unwrap_err().to_string();
    let e = error(
        r#"{"name": "g", "input": [8], "output": "image", "layers": [
        {"kind": "linear", "out": 100}, {"kind": "reshape", "shape": [4, 5, 6]}]}"#,
    );
    assert!(
        e.contains("layer 1 (reshape)") && e.contains("100 values"),
        "{e}"
    );
    let e = error(
        r#"{"name": "g", "input": [8], "output": "image", "layers": [
        {"kind": "linear", "out": 100}]}"#,
    );
    assert!(e.contains("an image") && e.contains("[100]"), "{e}");
    let e = error(
        r#"{"name": "d", "output": "score", "layers": [{"kind": "flatten"},
        {"kind": "linear", "out": 2}]}"#,
    );
    assert!(e.contains("one score") && e.contains("[2]"), "{e}");
    let e = error(
        r#"{"name": "g", "input": [8], "output": "image", "layers": [
        {"kind": "upsample", "scale": 2}]}"#,
    );
    assert!(e.contains("layer 0 (upsample)") && e.contains("[8]"), "{e}");
    let e = error(
        r#"{"name": "cifar", "input": [3, 32, 32], "layers": [{"kind": "flatten"},
        {"kind": "linear", "out": 10}]}"#,
    );
    assert!(e.contains("1x28x28") && e.contains("[3, 32, 32]"), "{e}");
    // A classifier's spec serialises as before: no input or output keys.
    let classifier =
        spec(r#"{"name": "c", "layers": [{"kind": "flatten"}, {"kind": "linear", "out": 10}]}"#);
    let json = serde_json::to_string(&classifier).unwrap();
    assert!(
        !json.contains("input") && !json.contains("output"),
        "{json}"
    );
}

#[test]
fn upsampling_matches_direct_loops_forward_and_backward() -> R {
    let (b, c, h, w, s) = (2, 3, 4, 5, 3);
    let x: Vec<f32> = (0..b * c * h * w)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let var = Var::from_vec(x.clone(), (b, c, h, w), &Device::Cpu)?;
    let y = upsample_nearest(var.as_tensor(), s)?;
    assert_eq!(y.dims(), &[b, c, h * s, w * s]);
    let got: Vec<f32> = y.flatten_all()?.to_vec1()?;
    // A weight per output position, so the gradient of sum(weight * y) tells each block apart.
    let weight: Vec<f32> = (0..got.len())
        .map(|i| ((i * 7) % 11) as f32 - 5.0)
        .collect();
    let mut want = vec![0f32; got.len()];
    let mut want_grad = vec![0f32; x.len()];
    for n in 0..b * c {
        for oy in 0..h * s {
            for ox in 0..w * s {
                let o = (n * h * s + oy) * w * s + ox;
                let i = (n * h + oy / s) * w + ox / s;
                want[o] = x[i];
                want_grad[i] += weight[o];
            }
        }
    }
    assert_eq!(got, want);
    let weight = Tensor::from_vec(weight, y.shape(), &Device::Cpu)?;
    let grads = (y * weight)?.sum_all()?.backward()?;
    let grad: Vec<f32> = grads.get(&var).unwrap().flatten_all()?.to_vec1()?;
    for (i, (g, w)) in grad.iter().zip(&want_grad).enumerate() {
        assert!((g - w).abs() < 1e-4, "grad[{i}]: {g} vs {w}");
    }
    Ok(())
}

#[test]
fn logit_cross_entropy_matches_its_formula_and_stays_finite() -> R {
    let logits = [-80.0f32, -3.0, -0.5, 0.0, 0.7, 4.0, 90.0];
    let t = Tensor::new(&logits[..], &Device::Cpu)?;
    for target in [0.0, 1.0] {
        let got = bce_with_logits(&t, target)?.to_scalar::<f32>()? as f64;
        let want: f64 = logits
            .iter()
            .map(|&l| {
                let l = l as f64;
                // -[t log s(l) + (1 - t) log(1 - s(l))], with log s(l) = -softplus(-l)
                let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
                target * softplus(-l) + (1.0 - target) * softplus(l)
            })
            .sum::<f64>()
            / logits.len() as f64;
        assert!(
            (got - want).abs() < 1e-4 * want.max(1.0),
            "{target}: {got} vs {want}"
        );
    }
    Ok(())
}

#[test]
fn frechet_distance_matches_closed_forms() -> R {
    // Rows of a fixed pseudo-random set, then the same set shifted and scaled.
    let (n, dim) = (400, 3);
    let a: Vec<f32> = (0..n * dim)
        .map(|i| ((i as f32 * 12.9898).sin() * 43_758.547).fract())
        .collect();
    assert!(frechet_distance(&a, &a, dim)? < 1e-9);
    let shifted: Vec<f32> = a.iter().map(|v| v + 2.0).collect();
    let d = frechet_distance(&a, &shifted, dim)?;
    assert!((d - 12.0).abs() < 1e-4, "a shift by 2 in 3 dims: {d}");
    // Scaling by k: for each dimension's variance s, tr terms give s (1 - k)^2 summed over the
    // (shared) eigen-directions: (1 - k)^2 tr(S).
    let k = 3.0f32;
    let scaled: Vec<f32> = a.iter().map(|v| v * k).collect();
    let (_, cov) = wna::gan::frechet::gaussian(&a, dim, "a")?;
    let (mu, _) = wna::gan::frechet::gaussian(&a, dim, "a")?;
    let want = (1.0 - k as f64).powi(2) * (cov.trace() + mu.norm_squared());
    let d = frechet_distance(&a, &scaled, dim)?;
    assert!((d - want).abs() < 1e-5 * want, "{d} vs {want}");
    let e = frechet_distance(&a[..dim], &a, dim)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 2 rows"), "{e}");
    Ok(())
}

fn pair(seed: u64) -> wna::Result<(Model, Model)> {
    let g = Model::new(spec(GENERATOR), Device::Cpu, seed, 0.5, 0.5)?;
    let d = Model::new(spec(DISCRIMINATOR), Device::Cpu, seed + 1, 0.5, 0.5)?;
    Ok((g, d))
}

fn weights(m: &Model) -> Vec<f32> {
    m.trainable()
        .iter()
        .flat_map(|(_, v)| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        })
        .collect()
}

#[test]
fn an_epoch_trains_both_networks_reproducibly() -> R {
    // 64 "real" images: a bright bar, so the discriminator has something to learn.
    let real: Vec<f32> = (0..64 * 784)
        .map(|i| if (i % 784) / 28 == 14 { 1.0 } else { 0.0 })
        .collect();
    let cfg = GanConfig {
        batch_size: 16,
        lr: 2e-3,
        beta1: 0.5,
        beta2: 0.999,
        seed: 3,
        epoch: 0,
    };
    let run = || -> wna::Result<(Vec<f32>, Vec<f32>, gan::GanMetrics)> {
        let (mut g, mut d) = pair(7)?;
        let before = (weights(&g), weights(&d));
        let m = gan::train_epoch(&mut g, &mut d, &real, &cfg, Default::default())?;
        assert_ne!(weights(&g), before.0, "the generator moved");
        assert_ne!(weights(&d), before.1, "the discriminator moved");
        assert_eq!(g.optimizer.as_ref().unwrap().step, 4);
        Ok((weights(&g), weights(&d), m))
    };
    let (g1, d1, m1) = run()?;
    let (g2, d2, m2) = run()?;
    assert_eq!(g1, g2, "same seed, same generator");
    assert_eq!(d1, d2, "same seed, same discriminator");
    assert!(m1.d_loss.is_finite() && m1.g_loss.is_finite());
    assert!((0.0..=1.0).contains(&m1.d_real) && (0.0..=1.0).contains(&m1.d_fake));
    assert_eq!(m1.d_loss, m2.d_loss);

    let (g, d) = pair(7)?;
    let z = vec![0.3f32; 2 * 8];
    let images = gan::generate(&g, &z)?;
    assert_eq!(images.len(), 2 * 784);
    assert!(
        images.iter().all(|v| (0.0..=1.0).contains(v)),
        "tanh maps into [0, 1]"
    );
    assert_eq!(images[..784], images[784..], "same latent, same image");
    let scores = gan::discriminate(&d, &images)?;
    assert_eq!(scores.len(), 2);
    let e = gan::generate(&g, &[0.0; 7]).unwrap_err().to_string();
    assert!(e.contains("multiple of 8"), "{e}");
    let e = gan::generate(&d, &[0.0; 784]).unwrap_err().to_string();
    assert!(e.contains("not a generator"), "{e}");
    let (mut g, mut d) = pair(1)?;
    let e = gan::train_epoch(&mut d, &mut g, &real, &cfg, Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("output \"image\""), "{e}");
    Ok(())
}
