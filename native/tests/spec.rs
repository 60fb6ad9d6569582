//! Specs: the shape check names the layer at fault, the built-in specs keep their layers, and
//! the ops a spec adds (activations, average pooling) match direct loops forward and backward.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use wna::layers::{avg_pool, Activation};
use wna::models::{build, builtin};
use wna::spec::NetSpec;

type R = wna::Result<()>;

fn spec(json: &str) -> NetSpec {
    serde_json::from_str(json).expect("valid spec JSON")
}

fn error_of(json: &str) -> String {
    match spec(json).shapes() {
        Ok(_) => panic!("expected an error for {json}"),
        Err(e) => e.to_string(),
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{i}]: {a} vs {b}");
    }
}

#[test]
fn shape_errors_name_the_layer_and_the_mismatch() {
    let e = error_of(
        r#"{"name": "bad", "layers": [{"kind": "conv2d", "name": "c", "out": 4, "kernel": 3},
            {"kind": "linear", "name": "fc", "out": 10}]}"#,
    );
    assert!(e.contains("layer 1 (linear \"fc\")"), "{e}");
    assert!(e.contains("[4, 26, 26]") && e.contains("flatten"), "{e}");
    let e = error_of(
        r#"{"name": "big", "layers": [{"kind": "conv2d", "out": 4, "kernel": 30},
            {"kind": "flatten"}, {"kind": "linear", "out": 10}]}"#,
    );
    assert!(
        e.contains("layer 0 (conv2d \"0\")") && e.contains("does not fit"),
        "{e}"
    );
    let e = error_of(
        r#"{"name": "dup", "layers": [{"kind": "flatten"}, {"kind": "linear", "name": "a", "out": 5},
            {"kind": "linear", "name": "a", "out": 10}]}"#,
    );
    assert!(e.contains("\"a\" is used twice"), "{e}");
    let e = error_of(r#"{"name": "open", "layers": [{"kind": "conv2d", "out": 4, "kernel": 3}]}"#);
    assert!(e.contains("[classes]") && e.contains("[4, 26, 26]"), "{e}");
    let e = error_of(
        r#"{"name": "pool", "layers": [{"kind": "max_pool", "size": 3}, {"kind": "flatten"},
            {"kind": "linear", "out": 10}]}"#,
    );
    assert!(e.contains("only 2x2 max pooling"), "{e}");
    // Unknown kinds and keys are rejected by the parser, naming them.
    let bad_kind =
        serde_json::from_str::<NetSpec>(r#"{"name": "x", "layers": [{"kind": "gelu"}]}"#)
            .unwrap_err()
            .to_string();
    assert!(bad_kind.contains("gelu"), "{bad_kind}");
    let bad_key = serde_json::from_str::<NetSpec>(
        r#"{"name": "x", "layers": [{"kind": "linear", "out": 10, "units": 3}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(bad_key.contains("units"), "{bad_key}");
}

#[test]
fn builtin_specs_keep_their_taps_and_parameter_names() -> R {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = build(&builtin::spec("smaller", 10, None)?, vb)?;
    let taps: Vec<_> = net
        .layers()
        .iter()
        .map(|l| (l.name.clone(), l.channels, l.height, l.rf))
        .collect();
    assert_eq!(
        taps,
        [
            ("conv1".into(), 32, 26, 3),
            ("conv2".into(), 64, 11, 8),
            ("fc1".into(), 256, 1, 28),
            ("logits".into(), 10, 1, 28)
        ]
    );
    let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(names.len(), 20, "{names:?}");
    assert!(names.contains(&"bn3.running_var".to_string()));
    // larger: stem, two taps per block, logits; a projection where the width changes.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = build(&builtin::spec("larger", 10, None)?, vb)?;
    let layers = net.layers();
    assert_eq!(layers.len(), 1 + 2 * 8 + 1);
    assert_eq!(layers[1].name, "stage1.0.conv1");
    assert_eq!((layers[1].height, layers[1].rf), (14, 11));
    let vars = varmap.data().lock().unwrap();
    assert!(
        vars.contains_key("stage2.0.proj.weight") && !vars.contains_key("stage1.0.proj.weight")
    );
    Ok(())
}

/// f(x) and f'(x) written out, for the activations of a spec.
fn reference(a: Activation, x: f32) -> (f32, f32) {
    let sig = 1.0 / (1.0 + (-x).exp());
    match a {
        Activation::Relu => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
        Activation::Sigmoid => (sig, sig * (1.0 - sig)),
        Activation::Tanh => (x.tanh(), 1.0 - x.tanh().powi(2)),
        Activation::LeakyRelu(s) => {
            let s = s as f32;
            if x > 0.0 {
                (x, 1.0)
            } else {
                (s * x, s)
            }
        }
        Activation::Mish => {
            let sp = (1.0 + x.exp()).ln();
            let t = sp.tanh();
            (x * t, t + x * (1.0 - t * t) * sig)
        }
    }
}

#[test]
fn activations_match_their_formulas_and_derivatives() -> R {
    let xs: Vec<f32> = (0..41).map(|i| -10.0 + i as f32 * 0.5 + 0.013).collect();
    let x = Var::from_tensor(&Tensor::new(xs.as_slice(), &Device::Cpu)?)?;
    for a in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu(0.2),
        Activation::Mish,
    ] {
        let y = a.forward(x.as_tensor())?;
        let grads = y.sum_all()?.backward()?;
        let g = values(grads.get(&x).expect("gradient"));
        let (want_y, want_g): (Vec<f32>, Vec<f32>) = xs.iter().map(|&v| reference(a, v)).unzip();
        assert_close(&values(&y), &want_y, 1e-5, &format!("{a:?} forward"));
        assert_close(&g, &want_g, 1e-5, &format!("{a:?} gradient"));
    }
    // Mish stays finite far out, where a naive log(1 + exp(x)) overflows.
    let far = Tensor::new(&[-200f32, 200.0], &Device::Cpu)?;
    assert_eq!(values(&Activation::Mish.forward(&far)?), [-0.0, 200.0]);
    Ok(())
}

/// Average pooling by direct loops: y and dL/dx for L = sum(y * r).
fn naive_avg_pool(
    x: &[f32],
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    r: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (oh, ow) = (h / k, w / k);
    let mut y = vec![0f32; c * oh * ow];
    let mut dx = vec![0f32; x.len()];
    for ch in 0..c {
        for i in 0..oh {
            for j in 0..ow {
                let o = (ch * oh + i) * ow + j;
                for di in 0..k {
                    for dj in 0..k {
                        let p = (ch * h + i * k + di) * w + j * k + dj;
                        y[o] += x[p] / (k * k) as f32;
                        dx[p] += r[o] / (k * k) as f32;
                    }
                }
            }
        }
    }
    (y, dx)
}

#[test]
fn avg_pool_routes_gradients_right_on_ragged_sizes() -> R {
    // Square planes, and a plane ragged in its rows only, in two images (wna's kernel on the CPU).
    for (n, h, w, k) in [
        (1, 25, 25, 2),
        (1, 24, 24, 2),
        (1, 11, 11, 2),
        (1, 14, 14, 3),
        (2, 9, 12, 2),
    ] {
        let c = 3;
        let xs: Vec<f32> = (0..n * c * h * w)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect();
        let (oh, ow) = (h / k, w / k);
        let rs: Vec<f32> = (0..n * c * oh * ow)
            .map(|i| ((i * 13) % 7) as f32 - 3.0)
            .collect();
        let x = Var::from_tensor(&Tensor::from_vec(xs.clone(), (n, c, h, w), &Device::Cpu)?)?;
        let r = Tensor::from_vec(rs.clone(), (n, c, oh, ow), &Device::Cpu)?;
        let y = avg_pool(x.as_tensor(), k)?;
        let grads = (&y * &r)?.sum_all()?.backward()?;
        let (want_y, want_dx) = naive_avg_pool(&xs, n * c, h, w, k, &rs);
        assert_close(
            &values(&y),
            &want_y,
            1e-6,
            &format!("avg pool {h}x{w}/{k} forward"),
        );
        assert_close(
            &values(grads.get(&x).unwrap()),
            &want_dx,
            1e-6,
            &format!("avg pool {h}x{w}/{k} gradient"),
        );
        // candle's own op misroutes the gradient whenever the size is ragged.
        let raw = (x.as_tensor().avg_pool2d(k)? * &r)?.sum_all()?.backward()?;
        let raw_dx = values(raw.get(&x).unwrap());
        let wrong = raw_dx
            .iter()
            .zip(&want_dx)
            .any(|(a, b)| (a - b).abs() > 1e-6);
        assert_eq!(
            wrong,
            h % k != 0 || w % k != 0,
            "candle avg_pool2d gradient at {h}x{w}/{k}"
        );
    }
    Ok(())
}
