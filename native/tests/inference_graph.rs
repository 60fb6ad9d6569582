//! An inference pass over a plain tensor records no autograd graph (`Model::forward_eval`'s
//! no-grad guard), whatever the network: otherwise every running sum built from its outputs
//! keeps every earlier pass alive, and a noise run's memory grows with its samples (about 1 MB
//! a sample for an imported `smaller`). A pass over a variable still records one.

use candle_core::backprop::{grad_enabled, no_grad};
use candle_core::{Device, Tensor, Var};
use wna::model::Model;
use wna::models::builtin;

/// `smaller` as `torch.onnx.export` writes it (batch norms folded into conv biases), and a conv
/// followed by an activation that no fused kernel covers.
fn imported_like() -> Vec<wna::spec::NetSpec> {
    let spec = |name: &str, activation: &str| {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "layers": [
                {"kind": "conv2d", "name": "conv1", "out": 8, "kernel": 3, "bias": true},
                {"kind": activation, "tap": "conv1"},
                {"kind": "max_pool", "size": 2},
                {"kind": "flatten"},
                {"kind": "linear", "name": "fc1", "out": 32},
                {"kind": "batch_norm", "name": "bn"},
                {"kind": "relu", "tap": "fc1"},
                {"kind": "linear", "name": "fc2", "out": 10},
            ]
        }))
        .unwrap()
    };
    vec![spec("folded", "relu"), spec("tanh", "tanh")]
}

fn models() -> wna::Result<Vec<Model>> {
    let mut specs: Vec<_> = builtin::MODEL_NAMES
        .iter()
        .map(|name| builtin::spec(name, 10, None))
        .collect::<wna::Result<_>>()?;
    specs.extend(imported_like());
    specs
        .into_iter()
        .map(|spec| Model::new(spec, Device::Cpu, 1, 0.1307, 0.3081))
        .collect()
}

#[test]
fn an_inference_pass_over_a_plain_tensor_keeps_no_graph() -> wna::Result<()> {
    let mut pixels = vec![0f32; 4 * 784];
    wna::philox::Philox::new(3, 0, 0).fill_uniform(&mut pixels);
    for model in models()? {
        let x = model.input(&pixels)?;
        let mut tracked = Vec::new();
        let logits = model.forward_eval(&x, &mut |name, t| {
            if t.track_op() {
                tracked.push(name.to_string());
            }
            Ok(())
        })?;
        assert!(
            tracked.is_empty() && !logits.track_op(),
            "{}: taps {tracked:?} and the logits ({}) record a graph",
            model.spec.name,
            logits.track_op()
        );
        assert!(
            grad_enabled(),
            "{}: the guard outlived the pass",
            model.spec.name
        );
    }
    Ok(())
}

#[test]
fn a_pass_over_a_variable_still_gives_input_gradients() -> wna::Result<()> {
    let mut pixels = vec![0f32; 3 * 784];
    wna::philox::Philox::new(4, 0, 0).fill_uniform(&mut pixels);
    for model in models()? {
        let x = Var::from_tensor(&model.input(&pixels)?)?;
        let logits = model.logits(x.as_tensor())?;
        let grads = logits.sum_all()?.backward()?;
        let g = grads.get(x.as_tensor()).expect("an input gradient");
        let norm: f32 = g.sqr()?.sum_all()?.to_scalar()?;
        assert!(norm > 0.0, "{}: zero input gradient", model.spec.name);
    }
    Ok(())
}

#[test]
fn the_no_grad_guard_nests_and_restores() -> candle_core::Result<()> {
    let w = Var::from_tensor(&Tensor::ones(3, candle_core::DType::F32, &Device::Cpu)?)?;
    {
        let _outer = no_grad();
        {
            let _inner = no_grad();
            assert!(!(w.as_tensor() * 2.0)?.track_op());
            // The variable itself is still one: only new ops go unrecorded.
            assert!(w.as_tensor().track_op());
        }
        assert!(
            !grad_enabled(),
            "dropping the inner guard re-enabled gradients"
        );
        assert!(!(w.as_tensor() + 1.0)?.track_op());
    }
    assert!(grad_enabled());
    assert!((w.as_tensor() * 2.0)?.track_op());
    Ok(())
}
