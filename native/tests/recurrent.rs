//! The recurrent layers against direct loops in f64: the forward pass of both cells, stacked,
//! with and without biases; every gradient (input and parameters) against central differences
//! of the direct loops; and the `rnn` layer of a spec reading a multi-channel image row by row.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;
use wna::model::Model;
use wna::philox::Philox;
use wna::recurrent::{Cell, Recurrent};
use wna::spec::NetSpec;

type R = wna::Result<()>;

const BATCH: usize = 3;
const STEPS: usize = 5;
const INPUT: usize = 4;
const HIDDEN: usize = 6;
const DEPTH: usize = 2;

fn normal(seed: u64, n: usize, std: f32) -> Vec<f64> {
    let mut v = vec![0f32; n];
    Philox::new(seed, 0, 0).fill_normal(&mut v, 0.0, std);
    v.into_iter().map(f64::from).collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The parameters by name, row-major, as the direct loops read them.
type Params = HashMap<String, (Vec<usize>, Vec<f64>)>;

/// PyTorch's documented recurrences, one scalar at a time: `x` is `[batch, steps, input]`,
/// returns the top layer's `[batch, steps, hidden]`.
fn direct(cell: Cell, p: &Params, x: &[f64], bias: bool) -> Vec<f64> {
    let gates = cell.gates();
    let mut seq = x.to_vec();
    let mut width = INPUT;
    for k in 0..DEPTH {
        let w_ih = &p[&format!("weight_ih_l{k}")].1;
        let w_hh = &p[&format!("weight_hh_l{k}")].1;
        let zero = vec![0.0; gates * HIDDEN];
        let (b_ih, b_hh) = if bias {
            (
                &p[&format!("bias_ih_l{k}")].1,
                &p[&format!("bias_hh_l{k}")].1,
            )
        } else {
            (&zero, &zero)
        };
        let mut out = vec![0.0; BATCH * STEPS * HIDDEN];
        for b in 0..BATCH {
            let mut h = vec![0.0; HIDDEN];
            let mut c = [0.0; HIDDEN];
            for t in 0..STEPS {
                let input = &seq[(b * STEPS + t) * width..][..width];
                let pre: Vec<f64> = (0..gates * HIDDEN)
                    .map(|r| {
                        let xi: f64 = (0..width).map(|j| w_ih[r * width + j] * input[j]).sum();
                        let hh: f64 = (0..HIDDEN).map(|j| w_hh[r * HIDDEN + j] * h[j]).sum();
                        xi + b_ih[r] + hh + b_hh[r]
                    })
                    .collect();
                let next: Vec<f64> = match cell {
                    Cell::Tanh => pre.iter().map(|v| v.tanh()).collect(),
                    Cell::Lstm => (0..HIDDEN)
                        .map(|u| {
                            let i = sigmoid(pre[u]);
                            let f = sigmoid(pre[HIDDEN + u]);
                            let g = pre[2 * HIDDEN + u].tanh();
                            let o = sigmoid(pre[3 * HIDDEN + u]);
                            c[u] = f * c[u] + i * g;
                            o * c[u].tanh()
                        })
                        .collect(),
                };
                h = next;
                out[(b * STEPS + t) * HIDDEN..][..HIDDEN].copy_from_slice(&h);
            }
        }
        seq = out;
        width = HIDDEN;
    }
    seq
}

/// A stack in f64 with every parameter drawn N(0, 0.5): larger than PyTorch's init, so that the
/// nonlinearities leave their linear range and a wrong gate or sign shows.
fn stack(cell: Cell, bias: bool) -> wna::Result<(Recurrent, VarMap, Params)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
    let net = Recurrent::new(cell, INPUT, HIDDEN, DEPTH, bias, vb)?;
    let mut params = Params::new();
    let vars = varmap.data().lock().unwrap();
    let mut names: Vec<_> = vars.keys().cloned().collect();
    names.sort();
    for (i, name) in names.iter().enumerate() {
        let var = &vars[name];
        let values = normal(100 + i as u64, var.elem_count(), 0.5);
        var.set(&Tensor::from_vec(
            values.clone(),
            var.shape(),
            &Device::Cpu,
        )?)?;
        params.insert(name.clone(), (var.dims().to_vec(), values));
    }
    drop(vars);
    Ok((net, varmap, params))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn both_cells_match_direct_loops_stacked_with_and_without_bias() -> R {
    for cell in [Cell::Tanh, Cell::Lstm] {
        for bias in [true, false] {
            let (net, varmap, params) = stack(cell, bias)?;
            let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
            assert_eq!(names.len(), DEPTH * if bias { 4 } else { 2 }, "{names:?}");
            let (rows, fan) = &params["weight_ih_l0"].0.split_at(1);
            assert_eq!(rows[0], cell.gates() * HIDDEN);
            assert_eq!(fan[0], INPUT);
            assert_eq!(
                params["weight_ih_l1"].0,
                vec![cell.gates() * HIDDEN, HIDDEN]
            );
            let x = normal(7, BATCH * STEPS * INPUT, 1.0);
            let xt = Tensor::from_vec(x.clone(), (BATCH, STEPS, INPUT), &Device::Cpu)?;
            let got = net.forward(&xt)?.flatten_all()?.to_vec1::<f64>()?;
            let want = direct(cell, &params, &x, bias);
            let d = max_diff(&got, &want);
            assert!(d < 1e-12, "{cell:?} bias {bias}: max |diff| {d}");
            let last = net.forward_last(&xt)?.to_vec2::<f64>()?;
            for (b, row) in last.iter().enumerate() {
                let at = (b * STEPS + STEPS - 1) * HIDDEN;
                assert!(max_diff(row, &want[at..at + HIDDEN]) < 1e-12);
            }
        }
    }
    Ok(())
}

#[test]
fn every_gradient_matches_central_differences() -> R {
    let weights = normal(9, BATCH * STEPS * HIDDEN, 1.0);
    let loss = |seq: &[f64]| -> f64 { seq.iter().zip(&weights).map(|(a, b)| a * b).sum() };
    const H: f64 = 1e-6;
    for cell in [Cell::Tanh, Cell::Lstm] {
        let (net, varmap, params) = stack(cell, true)?;
        let x = normal(8, BATCH * STEPS * INPUT, 1.0);
        let xv = Var::from_vec(x.clone(), (BATCH, STEPS, INPUT), &Device::Cpu)?;
        let w = Tensor::from_vec(weights.clone(), (BATCH, STEPS, HIDDEN), &Device::Cpu)?;
        let grads = (net.forward(xv.as_tensor())? * w)?.sum_all()?.backward()?;
        let numeric = |perturb: &dyn Fn(f64) -> f64| (perturb(H) - perturb(-H)) / (2.0 * H);
        // The input.
        let gx = grads
            .get(xv.as_tensor())
            .expect("input gradient")
            .flatten_all()?
            .to_vec1::<f64>()?;
        for i in 0..x.len() {
            let want = numeric(&|h| {
                let mut x2 = x.clone();
                x2[i] += h;
                loss(&direct(cell, &params, &x2, true))
            });
            assert!(
                (gx[i] - want).abs() < 1e-6 * (1.0 + want.abs()),
                "{cell:?} d/dx[{i}]: {} vs {want}",
                gx[i]
            );
        }
        // Every parameter, every element.
        let vars = varmap.data().lock().unwrap();
        for (name, var) in vars.iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"))
                .flatten_all()?
                .to_vec1::<f64>()?;
            for (i, got) in g.iter().enumerate() {
                let want = numeric(&|h| {
                    let mut p2 = params.clone();
                    p2.get_mut(name).unwrap().1[i] += h;
                    loss(&direct(cell, &p2, &x, true))
                });
                assert!(
                    (got - want).abs() < 1e-6 * (1.0 + want.abs()),
                    "{cell:?} d/d{name}[{i}]: {got} vs {want}"
                );
            }
        }
    }
    Ok(())
}

fn spec(json: &str) -> NetSpec {
    serde_json::from_str(json).expect("valid spec JSON")
}

/// A 1x1 conv makes three channels (x, 2x, 3x); the `rnn` layer must see each row as the three
/// channels' rows side by side: step t = [x[t, :], 2 x[t, :], 3 x[t, :]].
#[test]
fn a_multichannel_image_is_read_row_by_row() -> R {
    let net = spec(
        r#"{"name": "rows", "layers": [
        {"kind": "conv2d", "name": "scale", "out": 3, "kernel": 1, "bias": false},
        {"kind": "rnn", "name": "rnn", "cell": "lstm", "hidden": 5, "tap": "rnn"},
        {"kind": "linear", "name": "fc", "out": 2}]}"#,
    );
    assert_eq!(net.shapes()?[1], vec![5]);
    let model = Model::new(net, Device::Cpu, 3, 0.0, 1.0)?;
    let vars: HashMap<String, Var> = model.trainable().into_iter().collect();
    vars["scale.weight"]
        .set(&Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu)?.reshape((3, 1, 1, 1))?)?;
    let read = |name: &str| -> Vec<f32> {
        vars[name]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let (w_ih, w_hh, b_ih, b_hh) = (
        read("rnn.weight_ih_l0"),
        read("rnn.weight_hh_l0"),
        read("rnn.bias_ih_l0"),
        read("rnn.bias_hh_l0"),
    );
    assert_eq!(w_ih.len(), 4 * 5 * 84);
    let mut pixels = vec![0f32; 784];
    Philox::new(4, 0, 0).fill_uniform(&mut pixels);
    let mut rnn_out = Vec::new();
    model.forward_eval(&model.input(&pixels)?, &mut |name, t| {
        if name == "rnn" {
            rnn_out = t.flatten_all()?.to_vec1::<f32>()?;
        }
        Ok(())
    })?;
    let (mut h, mut c) = (vec![0f64; 5], vec![0f64; 5]);
    for t in 0..28 {
        let row = &pixels[t * 28..][..28];
        let step: Vec<f64> = (1..=3)
            .flat_map(|scale| row.iter().map(move |&p| scale as f64 * p as f64))
            .collect();
        let pre: Vec<f64> = (0..20)
            .map(|r| {
                (0..84)
                    .map(|j| w_ih[r * 84 + j] as f64 * step[j])
                    .sum::<f64>()
                    + (0..5).map(|j| w_hh[r * 5 + j] as f64 * h[j]).sum::<f64>()
                    + b_ih[r] as f64
                    + b_hh[r] as f64
            })
            .collect();
        h = (0..5)
            .map(|u| {
                c[u] = sigmoid(pre[5 + u]) * c[u] + sigmoid(pre[u]) * pre[10 + u].tanh();
                sigmoid(pre[15 + u]) * c[u].tanh()
            })
            .collect();
    }
    let d = rnn_out
        .iter()
        .zip(&h)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(d < 1e-5, "max |diff| {d}: {rnn_out:?} vs {h:?}");
    Ok(())
}

#[test]
fn recurrent_parameters_get_pytorchs_seeded_init() -> R {
    let rnn = wna::models::builtin::spec("lstm", 10, None)?;
    let a = Model::new(rnn.clone(), Device::Cpu, 1, 0.0, 1.0)?;
    let b = Model::new(rnn.clone(), Device::Cpu, 1, 0.0, 1.0)?;
    let c = Model::new(rnn, Device::Cpu, 2, 0.0, 1.0)?;
    let bound = 1.0 / 128f32.sqrt();
    let names: Vec<String> = a.trainable().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "fc.bias",
            "fc.weight",
            "rnn.bias_hh_l0",
            "rnn.bias_hh_l1",
            "rnn.bias_ih_l0",
            "rnn.bias_ih_l1",
            "rnn.weight_hh_l0",
            "rnn.weight_hh_l1",
            "rnn.weight_ih_l0",
            "rnn.weight_ih_l1",
        ]
    );
    let values = |m: &Model, name: &str| -> Vec<f32> {
        let vars: HashMap<String, Var> = m.trainable().into_iter().collect();
        vars[name].flatten_all().unwrap().to_vec1().unwrap()
    };
    for name in names.iter().filter(|n| n.starts_with("rnn.")) {
        let v = values(&a, name);
        assert_eq!(v, values(&b, name), "{name}: same seed, same values");
        assert_ne!(v, values(&c, name), "{name}: another seed, other values");
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        // Uniform on ±bound: the extremes come close to it and never pass it.
        assert!(
            max <= bound && max > 0.9 * bound,
            "{name}: max {max}, bound {bound}"
        );
    }
    Ok(())
}

#[test]
fn an_rnn_layer_needs_a_sequence_and_a_size() {
    let error = |json: &str| spec(json).shapes().unwrap_err().to_string();
    let e = error(
        r#"{"name": "r", "layers": [{"kind": "flatten"},
        {"kind": "rnn", "hidden": 8}, {"kind": "linear", "out": 10}]}"#,
    );
    assert!(
        e.contains("layer 1 (rnn") && e.contains("needs a sequence") && e.contains("[784]"),
        "{e}"
    );
    let e = error(
        r#"{"name": "r", "layers": [{"kind": "rnn", "hidden": 0},
        {"kind": "linear", "out": 10}]}"#,
    );
    assert!(e.contains("hidden and layers must be >= 1"), "{e}");
    let e = spec_error(r#"{"kind": "rnn", "hidden": 8, "cell": "gru"}"#);
    assert!(e.contains("gru"), "{e}");
    // A [steps, features] input is a sequence too.
    let shapes = spec(
        r#"{"name": "r", "layers": [{"kind": "reshape", "shape": [49, 16]},
        {"kind": "rnn", "hidden": 8, "layers": 3}, {"kind": "linear", "out": 10}]}"#,
    )
    .shapes()
    .unwrap();
    assert_eq!(shapes[1], vec![8]);
}

fn spec_error(layer: &str) -> String {
    let json = format!(r#"{{"name": "r", "layers": [{layer}, {{"kind": "linear", "out": 10}}]}}"#);
    serde_json::from_str::<NetSpec>(&json)
        .unwrap_err()
        .to_string()
}

/// The fused CPU time loop (`kernels::Recurrence`, taken in f32 on the CPU) against the same
/// stack run by candle's ops: states and every gradient, both cells, with and without biases, a
/// batch that splits over threads.
#[test]
fn the_fused_time_loop_matches_candles_ops_forward_and_backward() -> R {
    for (cell, bias) in [
        (Cell::Tanh, true),
        (Cell::Lstm, true),
        (Cell::Tanh, false),
        (Cell::Lstm, false),
    ] {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = Recurrent::new(cell, 7, 9, 2, bias, vb)?;
        for (i, var) in varmap.data().lock().unwrap().values().enumerate() {
            let values: Vec<f32> = normal(200 + i as u64, var.elem_count(), 0.5)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu)?)?;
        }
        // 70 rows: two of the op's tasks (64 rows each), the second one partial.
        let (batch, steps) = (70, 6);
        let x: Vec<f32> = normal(11, batch * steps * 7, 1.0)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let weights = Tensor::from_vec(
            normal(12, batch * steps * 9, 1.0)
                .into_iter()
                .map(|v| v as f32)
                .collect::<Vec<_>>(),
            (batch, steps, 9),
            &Device::Cpu,
        )?;
        let run = |fused: bool| -> wna::Result<(Vec<f32>, Vec<Vec<f32>>)> {
            let xv = Var::from_vec(x.clone(), (batch, steps, 7), &Device::Cpu)?;
            let out = if fused {
                net.forward(xv.as_tensor())?
            } else {
                net.forward_unfused(xv.as_tensor())?
            };
            let grads = (&out * &weights)?.sum_all()?.backward()?;
            let mut all = vec![grads
                .get(xv.as_tensor())
                .expect("input gradient")
                .flatten_all()?
                .to_vec1::<f32>()?];
            let vars = varmap.data().lock().unwrap();
            let mut names: Vec<_> = vars.keys().cloned().collect();
            names.sort();
            for name in names {
                let g = grads
                    .get(vars[&name].as_tensor())
                    .expect("parameter gradient");
                all.push(g.flatten_all()?.to_vec1::<f32>()?);
            }
            Ok((out.flatten_all()?.to_vec1::<f32>()?, all))
        };
        let (fused_out, fused_grads) = run(true)?;
        let (ops_out, ops_grads) = run(false)?;
        let close = |a: &[f32], b: &[f32], what: &str| {
            let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let d = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                d <= 1e-5 * scale.max(1.0),
                "{cell:?} {what}: max |diff| {d}, scale {scale}"
            );
        };
        close(&fused_out, &ops_out, "states");
        assert_eq!(fused_grads.len(), if bias { 9 } else { 5 });
        for (i, (a, b)) in fused_grads.iter().zip(&ops_grads).enumerate() {
            close(a, b, &format!("gradient {i}"));
        }
    }
    Ok(())
}
