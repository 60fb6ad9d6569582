//! Attributions and feature visualisation: quadrature nodes against numpy, gradients against
//! finite differences and closed forms, integrated gradients by completeness, the best reference
//! image against a direct scan, and activation maximisation against the best real input.

use candle_core::{Device, Tensor};
use wna::attribution::{attribute, gauss_legendre, AttributionOptions};
use wna::feature_vis::{maximise, FeatureVisOptions};
use wna::model::Model;
use wna::models::builtin;
use wna::objective::{Objective, Target};
use wna::philox::Philox;
use wna::progress::Progress;

fn model(name: &str, seed: u64) -> Model {
    let spec = builtin::spec(name, 10, None).unwrap();
    Model::new(spec, Device::Cpu, seed, 0.1307, 0.3081).unwrap()
}

fn images(n: usize, seed: u64) -> Vec<f32> {
    let mut px = vec![0f32; n * 784];
    Philox::new(seed, 0, 0).fill_uniform(&mut px);
    px
}

fn logit(class: usize) -> Target {
    Target {
        layer: "logits".into(),
        unit: Some(class),
        direction: None,
    }
}

fn options(json: serde_json::Value) -> AttributionOptions {
    serde_json::from_value(json).unwrap()
}

#[test]
fn gauss_legendre_matches_numpy() {
    // numpy.polynomial.legendre.leggauss(5), mapped to [0, 1].
    let nodes = [
        0.04691007703066802,
        0.23076534494715845,
        0.5,
        0.7692346550528415,
        0.9530899229693319,
    ];
    let weights = [
        0.11846344252809464,
        0.23931433524968315,
        0.28444444444444433,
        0.23931433524968315,
        0.11846344252809464,
    ];
    let (x, w) = gauss_legendre(5);
    for i in 0..5 {
        assert!(
            (x[i] - nodes[i]).abs() < 1e-12,
            "node {i}: {} vs {}",
            x[i],
            nodes[i]
        );
        assert!(
            (w[i] - weights[i]).abs() < 1e-12,
            "weight {i}: {} vs {}",
            w[i],
            weights[i]
        );
    }
    // Exact for polynomials up to degree 2n - 1 = 99 at n = 50.
    let (x, w) = gauss_legendre(50);
    let integral: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(99)).sum();
    assert!((integral - 0.01).abs() < 1e-12, "{integral}");
}

#[test]
fn saliency_of_logistic_regression_is_its_weight_row() {
    let m = model("logreg", 3);
    let px = images(3, 1);
    let o = options(serde_json::json!({
        "method": "saliency", "absolute": false,
        "targets": [{"layer": "logits", "unit": 2}, {"layer": "logits", "unit": 7},
                    {"layer": "logits", "unit": 2}],
    }));
    let a = attribute(&m, &px, &o, Progress::default()).unwrap();
    let (_, attr) = a.get("attributions").unwrap();
    let w: Vec<Vec<f32>> = m.varmap.data().lock().unwrap()["fc.weight"]
        .as_tensor()
        .to_vec2()
        .unwrap();
    for (i, class) in [2, 7, 2].iter().enumerate() {
        for p in 0..784 {
            let want = w[*class][p] / 0.3081;
            let got = attr[i * 784 + p];
            assert!(
                (got - want).abs() < 1e-5,
                "image {i} pixel {p}: {got} vs {want}"
            );
        }
    }
}

/// A smooth net (tanh, sigmoid, average pooling): finite differences have no kinks to trip on,
/// so they check the objective's plumbing (spatial means, directions, layer taps) exactly.
fn smooth_model() -> Model {
    let spec: wna::spec::NetSpec =
        serde_json::from_value(serde_json::json!({"name": "smooth", "layers": [
            {"kind": "conv2d", "name": "conv1", "out": 4, "kernel": 3, "padding": 1},
            {"kind": "tanh", "tap": "conv1"},
            {"kind": "avg_pool", "size": 2},
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc1", "out": 16},
            {"kind": "sigmoid", "tap": "fc1"},
            {"kind": "linear", "name": "fc2", "out": 10},
        ]}))
        .unwrap();
    Model::new(spec, Device::Cpu, 5, 0.1307, 0.3081).unwrap()
}

#[test]
fn objective_gradients_match_finite_differences() {
    let m = smooth_model();
    let px = images(3, 2);
    let targets = vec![
        Target {
            layer: "conv1".into(),
            unit: Some(3),
            direction: None,
        },
        Target {
            layer: "fc1".into(),
            unit: None,
            direction: Some((0..16).map(|i| (i % 7) as f32 - 3.0).collect()),
        },
        logit(4),
    ];
    let obj = Objective::new(&m, &targets).unwrap();
    let x = Tensor::from_slice(&px, (3, 784), &m.device).unwrap();
    let (g, v) = obj.gradients(&m, &x).unwrap();
    let value = |px: &[f32]| -> Vec<f32> {
        obj.forward(&m, &m.input(px).unwrap())
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    assert_eq!(value(&px), v);
    for &p in &[100usize, 350, 406, 600] {
        for i in 0..3 {
            let h = 1e-2f32;
            let (mut up, mut down) = (px.clone(), px.clone());
            up[i * 784 + p] += h;
            down[i * 784 + p] -= h;
            let fd = (value(&up)[i] - value(&down)[i]) / (2.0 * h);
            let got = g[i * 784 + p];
            assert!(
                (got - fd).abs() < 1e-3 * (1e-2 + fd.abs()) + 2e-5,
                "image {i} pixel {p}: {got} vs {fd}"
            );
        }
    }
}

#[test]
fn integrated_gradients_are_complete_within_one_percent() {
    let m = model("smaller", 7);
    let px = images(4, 3);
    // Gauss-Legendre (the default) within 1%; the trapezoid rule converges more slowly.
    for (rule, steps, tol) in [
        ("gauss_legendre", 200, 0.01),
        ("riemann_trapezoid", 200, 0.05),
    ] {
        let o = options(serde_json::json!({
            "method": "integrated_gradients", "steps": steps, "rule": rule, "internalBatch": 128,
            "targets": (0..4).map(|c| serde_json::json!({"layer": "logits", "unit": c * 2})).collect::<Vec<_>>(),
        }));
        let a = attribute(&m, &px, &o, Progress::default()).unwrap();
        let (_, delta) = a.get("delta").unwrap();
        let (_, values) = a.get("values").unwrap();
        let (_, base) = a.get("baselineValues").unwrap();
        for i in 0..4 {
            let change = values[i] - base[i];
            assert!(
                delta[i].abs() <= tol * change.abs().max(1e-3),
                "{rule} image {i}: delta {} for a change of {change}",
                delta[i]
            );
        }
        // Batching does not change the result.
        let mut small = o.clone();
        small.internal_batch = 7;
        let b = attribute(&m, &px, &small, Progress::default()).unwrap();
        let (x, y) = (
            &a.get("attributions").unwrap().1,
            &b.get("attributions").unwrap().1,
        );
        for (p, q) in x.iter().zip(y.iter()) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {q}");
        }
    }
}

#[test]
fn smoothgrad_with_zero_noise_is_saliency() {
    let m = model("mlp", 2);
    let px = images(2, 4);
    let targets = serde_json::json!([{"layer": "logits", "unit": 1}, {"layer": "fc1", "unit": 9}]);
    let sal = attribute(
        &m,
        &px,
        &options(serde_json::json!({"method": "saliency", "targets": targets})),
        Progress::default(),
    )
    .unwrap();
    let sg = attribute(
        &m,
        &px,
        &options(serde_json::json!({"method": "smooth_grad", "sigma": 0.0, "samples": 3, "targets": targets})),
        Progress::default(),
    )
    .unwrap();
    let (a, b) = (
        &sal.get("attributions").unwrap().1,
        &sg.get("attributions").unwrap().1,
    );
    for (p, q) in a.iter().zip(b.iter()) {
        assert!((p - q).abs() <= 1e-6 * (1.0 + p.abs()), "{p} vs {q}");
    }
}

#[test]
fn bad_targets_are_named() {
    let m = model("smaller", 1);
    let px = images(1, 1);
    let err = |json: serde_json::Value| {
        attribute(&m, &px, &options(json), Progress::default())
            .unwrap_err()
            .to_string()
    };
    let e =
        err(serde_json::json!({"method": "saliency", "targets": [{"layer": "conv1", "unit": 40}]}));
    assert!(
        e.contains("unit 40 out of range for layer conv1 (32 units)"),
        "{e}"
    );
    let e =
        err(serde_json::json!({"method": "saliency", "targets": [{"layer": "conv9", "unit": 0}]}));
    assert!(e.contains("conv9"), "{e}");
    let e =
        err(serde_json::json!({"method": "saliency", "targets": [logit_json(1), logit_json(2)]}));
    assert!(e.contains("2 targets for 1 images"), "{e}");
}

fn logit_json(c: usize) -> serde_json::Value {
    serde_json::json!({"layer": "logits", "unit": c})
}

#[test]
fn best_reference_image_matches_a_direct_scan() {
    let m = model("smaller", 4);
    let reference = images(700, 9);
    let targets = vec![
        logit(3),
        Target {
            layer: "conv1".into(),
            unit: Some(5),
            direction: None,
        },
    ];
    let obj = Objective::new(&m, &targets).unwrap();
    let (best, index) = obj.best_over(&m, &reference).unwrap();
    for (t, target) in targets.iter().enumerate() {
        let one = Objective::new(&m, &vec![target.clone(); 700]).unwrap();
        let all: Vec<f32> = one
            .forward(&m, &m.input(&reference).unwrap())
            .unwrap()
            .to_vec1()
            .unwrap();
        let (j, v) =
            all.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |a, (j, &v)| if v > a.1 { (j, v) } else { a },
            );
        assert_eq!(index[t] as usize, j, "target {t}");
        assert!(
            (best[t] - v).abs() < 1e-4 * (1.0 + v.abs()),
            "target {t}: {} vs {v}",
            best[t]
        );
    }
}

#[test]
fn activation_maximisation_beats_every_reference_image() {
    let m = model("smaller", 6);
    let reference = images(300, 5);
    let mut o: FeatureVisOptions = serde_json::from_value(serde_json::json!({
        "targets": [logit_json(0), logit_json(7), {"layer": "conv2", "unit": 11}],
        "steps": 64,
        // A random net's logits are small; the default penalties would outweigh them.
        "tv": 0.001,
        "l2": 0.001,
    }))
    .unwrap();
    o.reference = Some(reference);
    let a = maximise(&m, &o, Progress::default()).unwrap();
    let (_, values) = a.get("values").unwrap();
    let (_, best) = a.get("referenceBest").unwrap();
    let (_, imgs) = a.get("images").unwrap();
    assert!(imgs.iter().all(|v| (0.0..=1.0).contains(v)));
    for t in 0..3 {
        assert!(
            values[t] > best[t],
            "target {t}: optimised {} vs best reference {}",
            values[t],
            best[t]
        );
    }
    let (_, curve) = a.get("curve").unwrap();
    assert!(
        curve[63] > curve[0],
        "the objective rises: {} -> {}",
        curve[0],
        curve[63]
    );
    // Same seed, same images.
    let again = maximise(&m, &o, Progress::default()).unwrap();
    assert_eq!(again.get("images").unwrap().1, *imgs);
}
