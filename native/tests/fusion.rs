//! The fused inference convolution (conv, batch norm, residual sum and ReLU in one pass) gives
//! the same bits as the separate ops, alone and inside whole networks.

use candle_core::{Device, Tensor, Var};
use wna::kernels::{inference_affine, BatchNorm, Conv2d, Conv2dInference, Epilogue};
use wna::model::Model;
use wna::models::builtin;

type R = candle_core::Result<()>;

fn rand(shape: &[usize], seed: u64, lo: f32, hi: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v = vec![0f32; n];
    wna::philox::Philox::new(seed, 3, 0).fill_uniform(&mut v);
    let v: Vec<f32> = v.iter().map(|x| lo + (hi - lo) * x).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_fused_conv_has_the_bits_of_conv_batch_norm_add_and_relu() -> R {
    // (batch, c_in, size, c_out, kernel, stride, padding): `larger`'s same-size 3x3 and its
    // stride-2 stem and projection, and a valid conv as in `smaller`; 23 images make a short
    // last group and task; 64 input channels take the Winograd path.
    for (n, c, size, k, kernel, stride, padding) in [
        (23, 4, 7, 8, 3, 1, 1),
        (23, 64, 7, 8, 3, 1, 1),
        (23, 1, 28, 5, 7, 2, 3),
        (23, 6, 14, 8, 1, 2, 0),
        (23, 3, 13, 6, 3, 1, 0),
    ] {
        let x = rand(&[n, c, size, size], 1, -1.0, 1.0);
        let w = rand(&[k, c, kernel, kernel], 2, -0.5, 0.5);
        let bias = rand(&[k], 3, -0.5, 0.5);
        let gamma = rand(&[k], 4, 0.5, 1.5);
        let beta = rand(&[k], 5, -0.5, 0.5);
        let mean: Vec<f32> = rand(&[k], 6, -0.5, 0.5).to_vec1()?;
        let invstd: Vec<f32> = rand(&[k], 7, 0.5, 2.0).to_vec1()?;
        let conv = Conv2d { stride, padding };
        let y = x.apply_op3_no_bwd(&w, &bias, &conv)?;
        let skip = rand(y.dims(), 8, -1.0, 1.0);
        for (with_skip, relu) in [(false, false), (false, true), (true, false), (true, true)] {
            // The separate ops: ReLU inside the batch norm when nothing is added after it.
            let normed = y.apply_op3_no_bwd(
                &gamma,
                &beta,
                &BatchNorm {
                    mean: mean.clone(),
                    invstd: invstd.clone(),
                    batch_statistics: false,
                    relu: relu && !with_skip,
                },
            )?;
            let expected = match (with_skip, relu) {
                (true, true) => (normed + &skip)?.relu()?,
                (true, false) => (normed + &skip)?,
                _ => normed,
            };
            let fused = Conv2dInference {
                conv: Conv2d { stride, padding },
                epilogue: Epilogue {
                    bias: bias.to_vec1()?,
                    affine: Some(inference_affine(
                        &gamma.to_vec1::<f32>()?,
                        &beta.to_vec1::<f32>()?,
                        &mean,
                        &invstd,
                    )),
                    relu,
                },
            };
            let got = if with_skip {
                x.apply_op3_no_bwd(&w, &skip, &fused)?
            } else {
                x.apply_op2_no_bwd(&w, &fused)?
            };
            assert_eq!(got.dims(), expected.dims());
            assert!(
                bits(&got) == bits(&expected),
                "size {size} kernel {kernel} stride {stride}: skip {with_skip} relu {relu}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_residual_input_of_the_wrong_shape_is_an_error() -> R {
    let x = rand(&[2, 3, 7, 7], 1, -1.0, 1.0);
    let w = rand(&[4, 3, 3, 3], 2, -1.0, 1.0);
    let op = Conv2dInference {
        conv: Conv2d {
            stride: 1,
            padding: 1,
        },
        epilogue: Epilogue {
            bias: vec![0.0; 4],
            affine: None,
            relu: true,
        },
    };
    let err = x
        .apply_op3_no_bwd(&w, &rand(&[2, 4, 5, 5], 3, 0.0, 1.0), &op)
        .unwrap_err();
    assert!(err.to_string().contains("residual input"), "{err}");
    let short = Conv2dInference {
        epilogue: Epilogue {
            bias: vec![0.0; 3],
            affine: None,
            relu: false,
        },
        ..op
    };
    assert!(x.apply_op2_no_bwd(&w, &short).is_err());
    Ok(())
}

/// A model whose batch norms have statistics and affine parameters away from their defaults, so
/// that every part of the epilogue changes the values.
fn model_with_batch_norms(name: &str) -> wna::Result<Model> {
    let spec = builtin::spec(name, 10, None)?;
    let model = Model::new(spec, Device::Cpu, 3, 0.1307, 0.3081)?;
    let vars = model.varmap.data().lock().unwrap();
    for (i, (key, var)) in vars.iter().enumerate() {
        let range = match key.rsplit('.').next() {
            Some("running_mean") => (-0.3, 0.3),
            Some("running_var") => (0.5, 2.0),
            Some("weight") if key.contains("bn") => (0.5, 1.5),
            Some("bias") if key.contains("bn") => (-0.3, 0.3),
            _ => continue,
        };
        var.set(&rand(var.dims(), 100 + i as u64, range.0, range.1))?;
    }
    drop(vars);
    Ok(model)
}

#[test]
fn networks_give_the_same_logits_fused_and_layer_by_layer() -> wna::Result<()> {
    let mut pixels = vec![0f32; 37 * 784];
    wna::philox::Philox::new(11, 0, 0).fill_uniform(&mut pixels);
    for name in ["smaller", "larger", "lenet5"] {
        let model = model_with_batch_norms(name)?;
        let x = model.input(&pixels)?;
        // A plain tensor takes the fused path; a variable, whose gradient may be wanted, the
        // layers one by one.
        let fused = model.logits(&x)?;
        let layered = model.logits(Var::from_tensor(&x)?.as_tensor())?;
        assert!(bits(&fused) == bits(&layered), "{name}");
    }
    Ok(())
}

#[test]
fn a_conv_with_its_batch_norm_folded_in_gives_the_same_logits_fused_and_layer_by_layer(
) -> wna::Result<()> {
    // `smaller` as `torch.onnx.export` writes it: each batch norm folded into its conv's bias,
    // so a conv is followed by its ReLU directly (tests/fixtures/onnx/smaller.onnx converts to
    // this spec).
    let spec: wna::spec::NetSpec = serde_json::from_value(serde_json::json!({
        "name": "folded",
        "layers": [
            {"kind": "conv2d", "name": "conv1", "out": 32, "kernel": 3, "bias": true},
            {"kind": "relu", "tap": "conv1"},
            {"kind": "max_pool", "size": 2},
            {"kind": "conv2d", "name": "conv2", "out": 64, "kernel": 3, "bias": true},
            {"kind": "relu"},
            {"kind": "max_pool", "size": 2},
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc1", "out": 64},
            {"kind": "relu", "tap": "fc1"},
            {"kind": "linear", "name": "fc2", "out": 10},
        ]
    }))
    .map_err(|e| wna::Error::InvalidArgument(e.to_string()))?;
    let model = Model::new(spec, Device::Cpu, 5, 0.1307, 0.3081)?;
    let mut pixels = vec![0f32; 29 * 784];
    wna::philox::Philox::new(12, 0, 0).fill_uniform(&mut pixels);
    let x = model.input(&pixels)?;
    let mut fused_taps = Vec::new();
    let fused = model.forward_eval(&x, &mut |name, t| {
        fused_taps.push((name.to_string(), bits(t)));
        Ok(())
    })?;
    let mut layered_taps = Vec::new();
    let layered = model.forward_eval(Var::from_tensor(&x)?.as_tensor(), &mut |name, t| {
        layered_taps.push((name.to_string(), bits(t)));
        Ok(())
    })?;
    assert!(bits(&fused) == bits(&layered));
    assert_eq!(fused_taps.len(), 3, "conv1, fc1 and the logits are tapped");
    assert!(fused_taps == layered_taps);
    Ok(())
}
