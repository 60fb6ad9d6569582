//! wna's CPU kernels against candle's own ops and direct loops: forward values and every
//! gradient; and the portable ops (candle's forward, fixed backward) that run off the CPU.

use candle_core::{Device, Tensor, Var};
use wna::backward_fixes::{self, ConvWeightGradient};
use wna::kernels::{self, BatchNorm, Conv2d, MaxPool2};

type R = candle_core::Result<()>;

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn rand(shape: &[usize], seed: u64) -> Tensor {
    // Deterministic, tie-free values so max-pool has one winner per window.
    let n: usize = shape.iter().product();
    let p = wna::philox::Philox::new(seed, 7, 0);
    let mut v = vec![0f32; n];
    p.fill_uniform(&mut v);
    Tensor::from_vec(
        v.iter().map(|x| 2.0 * x - 1.0).collect::<Vec<_>>(),
        shape,
        &Device::Cpu,
    )
    .unwrap()
}

/// Direct loops over every (image, out channel, in channel, tap, position): slow but obviously
/// right. Returns (y, dL/dx, dL/dw, dL/db) for L = sum(y * r).
#[allow(clippy::type_complexity)]
fn naive_conv(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    r: &[f32],
    (n, c, h, k, kk, stride, pad): (usize, usize, usize, usize, usize, usize, usize),
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let o = (h + 2 * pad - kk) / stride + 1;
    let mut y = vec![0f32; n * k * o * o];
    let (mut gx, mut gw, mut gb) = (vec![0f32; x.len()], vec![0f32; w.len()], vec![0f32; k]);
    for ni in 0..n {
        for ki in 0..k {
            for oy in 0..o {
                for ox in 0..o {
                    let yi = ((ni * k + ki) * o + oy) * o + ox;
                    y[yi] = b[ki];
                    gb[ki] += r[yi];
                    for ci in 0..c {
                        for ky in 0..kk {
                            for kx in 0..kk {
                                let (iy, ix) = (
                                    (oy * stride + ky) as isize - pad as isize,
                                    (ox * stride + kx) as isize - pad as isize,
                                );
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= h as isize {
                                    continue;
                                }
                                let xi = ((ni * c + ci) * h + iy as usize) * h + ix as usize;
                                let wi = ((ki * c + ci) * kk + ky) * kk + kx;
                                y[yi] += w[wi] * x[xi];
                                gx[xi] += w[wi] * r[yi];
                                gw[wi] += x[xi] * r[yi];
                            }
                        }
                    }
                }
            }
        }
    }
    (y, gx, gw, gb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn conv2d_matches_direct_loops_forward_and_backward() -> R {
    for (n, k, stride, pad, size) in [
        (3, 3, 1, 0, 9),
        // 13 images of 7x7 outputs: groups of 10 and 3 images per product.
        (13, 3, 1, 0, 9),
        (3, 3, 1, 1, 8),
        // `larger`'s same-size 3x3 convs at 7x7 (the shifted-run patch path), in two groups.
        (13, 3, 1, 1, 7),
        (3, 3, 2, 1, 9),
        (3, 7, 2, 3, 14),
        (3, 1, 2, 0, 8),
        // The DCGAN discriminator's even 4x4 kernels at stride 2.
        (3, 4, 2, 1, 14),
        (3, 5, 1, 2, 7),
        // Zoo net 11.1's 8x8 and 6x6 kernels, padding 2: outputs smaller than the input, whose
        // patch rows are copied from a zero-bordered plane in 8-value moves (25 and 11 wide).
        (3, 8, 1, 2, 28),
        (5, 6, 1, 2, 12),
    ] {
        let x = Var::from_tensor(&rand(&[n, 4, size, size], 1))?;
        let w = Var::from_tensor(&rand(&[5, 4, k, k], 2))?;
        let b = Var::from_tensor(&rand(&[5], 3))?;
        let ours = x.apply_op3(
            &w,
            &b,
            Conv2d {
                stride,
                padding: pad,
            },
        )?;
        // candle's forward agrees too (its conv2d weight gradient does not, hence the loops).
        let theirs = x
            .conv2d(&w, pad, stride, 1, 1)?
            .broadcast_add(&b.reshape((1, 5, 1, 1))?)?;
        assert!(
            max_diff(&ours, &theirs) < 1e-5,
            "forward vs candle k{k} s{stride} p{pad}"
        );
        let r = rand(ours.dims(), 4);
        let grads = (&ours * &r)?.sum_all()?.backward()?;
        let (y, gx, gw, gb) = naive_conv(
            &values(&x),
            &values(&w),
            &values(&b),
            &values(&r),
            (n, 4, size, 5, k, stride, pad),
        );
        let case = format!("n{n} k{k} s{stride} p{pad} size {size}");
        assert!(max_abs_diff(&values(&ours), &y) < 1e-5, "forward {case}");
        assert!(
            max_abs_diff(&values(grads.get(&x).unwrap()), &gx) < 1e-4,
            "grad x {case}"
        );
        assert!(
            max_abs_diff(&values(grads.get(&w).unwrap()), &gw) < 1e-4,
            "grad w {case}"
        );
        assert!(
            max_abs_diff(&values(grads.get(&b).unwrap()), &gb) < 1e-4,
            "grad b {case}"
        );
        // The path off the CPU: candle's conv2d on a detached weight plus the zero-valued term
        // that carries the weight gradient.
        let candle_y = x.conv2d(&w.detach(), pad, stride, 1, 1)?;
        let fix = ConvWeightGradient {
            stride,
            padding: pad,
            out: candle_y.dims4()?,
        };
        let portable = (candle_y + x.detach().apply_op2(&w, fix)?)?
            .broadcast_add(&b.reshape((1, 5, 1, 1))?)?;
        let pg = (&portable * &r)?.sum_all()?.backward()?;
        assert!(
            max_abs_diff(&values(&portable), &y) < 1e-5,
            "portable forward {case}"
        );
        assert!(
            max_abs_diff(&values(pg.get(&x).unwrap()), &gx) < 1e-4,
            "portable grad x {case}"
        );
        assert!(
            max_abs_diff(&values(pg.get(&w).unwrap()), &gw) < 1e-4,
            "portable grad w {case}"
        );
    }
    Ok(())
}

fn reference_bn(
    x: &Tensor,
    g: &Tensor,
    b: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    relu: bool,
) -> candle_core::Result<Tensor> {
    let c = g.dim(0)?;
    let mut shape = vec![1, c];
    shape.extend(std::iter::repeat_n(1, x.rank() - 2));
    let r = |t: &Tensor| t.reshape(shape.as_slice());
    let y = x
        .broadcast_sub(&r(mean)?)?
        .broadcast_div(&(r(var)? + 1e-5)?.sqrt()?)?
        .broadcast_mul(&r(g)?)?
        .broadcast_add(&r(b)?)?;
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

#[test]
fn batch_norm_matches_reference_in_both_modes() -> R {
    // Planes of 25 and 81 values (whole 16-lane blocks and a remainder), of 32 (whole blocks
    // only), and `[n, c]` rows (batch norm 1d).
    for dims in [
        vec![6, 3, 5, 5],
        vec![2, 3, 9, 9],
        vec![3, 2, 8, 4],
        vec![8, 7],
    ] {
        for (train, relu) in [(true, true), (true, false), (false, true), (false, false)] {
            let c = dims[1];
            let x = Var::from_tensor(&(rand(&dims, 5) * 3.0)?.affine(1.0, 0.5)?)?;
            let g = Var::from_tensor(&rand(&[c], 6).affine(0.5, 1.0)?)?;
            let b = Var::from_tensor(&rand(&[c], 7))?;
            let spatial: usize = dims[2..].iter().product();
            let (mean, var): (Tensor, Tensor) = if train {
                // Differentiable batch statistics for the reference.
                let xt = x.transpose(0, 1)?.contiguous()?.flatten_from(1)?;
                let mean = xt.mean(1)?;
                let var = xt.broadcast_sub(&mean.unsqueeze(1)?)?.sqr()?.mean(1)?;
                (mean, var)
            } else {
                (rand(&[c], 8), rand(&[c], 9).affine(0.3, 1.0)?)
            };
            let (m_vec, v_vec) = if train {
                let data = x.flatten_all()?.to_vec1::<f32>()?;
                kernels::channel_statistics(&data, c, spatial)
            } else {
                (mean.to_vec1()?, var.to_vec1()?)
            };
            let op = BatchNorm {
                mean: m_vec,
                invstd: v_vec.iter().map(|v| 1.0 / (v + 1e-5f32).sqrt()).collect(),
                batch_statistics: train,
                relu,
            };
            let ours = x.apply_op3(&g, &b, op)?;
            let theirs = reference_bn(&x, &g, &b, &mean, &var, relu)?;
            assert!(
                max_diff(&ours, &theirs) < 1e-4,
                "forward {dims:?} train {train} relu {relu}"
            );
            let r = rand(ours.dims(), 10);
            let go = (&ours * &r)?.sum_all()?.backward()?;
            let gt = (&theirs * &r)?.sum_all()?.backward()?;
            for (name, v) in [("x", &x), ("gamma", &g), ("beta", &b)] {
                let d = max_diff(go.get(v).unwrap(), gt.get(v).unwrap());
                assert!(
                    d < 1e-4,
                    "grad {name} {dims:?} train {train} relu {relu}: {d}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn max_pool_matches_candle_forward_and_routes_gradients_to_the_maximum() -> R {
    for size in [26, 11, 7] {
        let x = Var::from_tensor(&rand(&[2, 3, size, size], 11))?;
        let ours = x.apply_op1(MaxPool2)?;
        assert_eq!(max_diff(&ours, &x.max_pool2d(2)?), 0.0);
        let r = rand(ours.dims(), 12);
        let grads = (&ours * &r)?.sum_all()?.backward()?;
        // Reference: each window's gradient lands on its (unique) maximum.
        let (xv, rv, o) = (values(&x), values(&r), size / 2);
        let mut expected = vec![0f32; xv.len()];
        for plane in 0..6 {
            for oy in 0..o {
                for ox in 0..o {
                    let idx =
                        |dy: usize, dx: usize| (plane * size + 2 * oy + dy) * size + 2 * ox + dx;
                    let best = [idx(0, 0), idx(0, 1), idx(1, 0), idx(1, 1)]
                        .into_iter()
                        .max_by(|&a, &b| xv[a].total_cmp(&xv[b]))
                        .unwrap();
                    expected[best] += rv[(plane * o + oy) * o + ox];
                }
            }
        }
        assert_eq!(
            max_abs_diff(&values(grads.get(&x).unwrap()), &expected),
            0.0,
            "size {size}"
        );
        let portable = x.apply_op1(backward_fixes::MaxPool2)?;
        assert_eq!(max_diff(&portable, &ours), 0.0);
        let pg = (&portable * &r)?.sum_all()?.backward()?;
        assert_eq!(
            max_abs_diff(&values(pg.get(&x).unwrap()), &expected),
            0.0,
            "portable, size {size}"
        );
    }
    Ok(())
}

#[test]
fn linear_matches_direct_loops_forward_and_backward() -> R {
    // A small layer, one whose outputs and inputs span several 128-column slabs of the
    // parallel product, the last one partial, and one of 1024 inputs (the transposed forward)
    // whose 130 outputs make two row tasks.
    for (n, fan_in, out) in [(5, 7, 3), (9, 300, 270), (6, 1024, 130)] {
        linear_case(n, fan_in, out)?;
    }
    Ok(())
}

fn linear_case(n: usize, fan_in: usize, out: usize) -> R {
    let x = Var::from_tensor(&rand(&[n, fan_in], 13))?;
    let w = Var::from_tensor(&rand(&[out, fan_in], 14))?;
    let b = Var::from_tensor(&rand(&[out], 15))?;
    let y = x.apply_op3(&w, &b, kernels::Linear)?;
    let r = rand(&[n, out], 16);
    let grads = (&y * &r)?.sum_all()?.backward()?;
    let (xv, wv, bv, rv) = (values(&x), values(&w), values(&b), values(&r));
    let (mut ey, mut gx, mut gw, mut gb) = (
        vec![0f32; n * out],
        vec![0f32; n * fan_in],
        vec![0f32; out * fan_in],
        vec![0f32; out],
    );
    for i in 0..n {
        for o in 0..out {
            ey[i * out + o] = bv[o];
            gb[o] += rv[i * out + o];
            for j in 0..fan_in {
                ey[i * out + o] += xv[i * fan_in + j] * wv[o * fan_in + j];
                gx[i * fan_in + j] += rv[i * out + o] * wv[o * fan_in + j];
                gw[o * fan_in + j] += rv[i * out + o] * xv[i * fan_in + j];
            }
        }
    }
    // Sums of up to 300 terms of size 1: f32 rounding stays well under 1e-4.
    let case = format!("{n}x{fan_in} -> {out}");
    assert!(max_abs_diff(&values(&y), &ey) < 1e-4, "y {case}");
    let gradient = |v: &Var| values(grads.get(v).unwrap());
    assert!(max_abs_diff(&gradient(&x), &gx) < 1e-4, "dx {case}");
    assert!(max_abs_diff(&gradient(&w), &gw) < 1e-4, "dw {case}");
    assert!(max_abs_diff(&gradient(&b), &gb) < 1e-4, "db {case}");
    Ok(())
}

#[test]
fn portable_inference_chain_matches_kernels_on_input_gradients() -> R {
    // conv -> batch norm (running statistics) + ReLU -> max-pool, as in `smaller`.
    let x = Var::from_tensor(&rand(&[4, 3, 13, 13], 21))?;
    let w = rand(&[6, 3, 3, 3], 22);
    let b = rand(&[6], 23);
    let gamma = (rand(&[6], 24) + 1.5)?;
    let beta = rand(&[6], 25);
    let mean: Vec<f32> = values(&rand(&[6], 26));
    let var: Vec<f32> = values(&rand(&[6], 27)).iter().map(|v| v + 1.5).collect();
    let invstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
    let ours = x
        .apply_op3(
            &w,
            &b,
            Conv2d {
                stride: 1,
                padding: 0,
            },
        )?
        .apply_op3(
            &gamma,
            &beta,
            BatchNorm {
                mean: mean.clone(),
                invstd: invstd.clone(),
                batch_statistics: false,
                relu: true,
            },
        )?
        .apply_op1(MaxPool2)?;
    let scale = Tensor::new(invstd.as_slice(), &Device::Cpu)?.mul(&gamma)?;
    let shift = (&beta - Tensor::new(mean.as_slice(), &Device::Cpu)?.mul(&scale)?)?;
    let portable = x
        .conv2d(&w, 0, 1, 1, 1)?
        .broadcast_add(&b.reshape((1, 6, 1, 1))?)?
        .broadcast_mul(&scale.reshape((1, 6, 1, 1))?)?
        .broadcast_add(&shift.reshape((1, 6, 1, 1))?)?
        .relu()?
        .apply_op1(backward_fixes::MaxPool2)?;
    assert!(max_diff(&ours, &portable) < 1e-5, "forward");
    let r = rand(ours.dims(), 28);
    let g1 = (&ours * &r)?.sum_all()?.backward()?;
    let g2 = (&portable * &r)?.sum_all()?.backward()?;
    let d = max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap());
    assert!(d < 1e-4, "input gradient differs by {d}");
    Ok(())
}

#[test]
fn portable_max_pool_gives_ties_to_the_first_maximum_like_the_kernel() -> R {
    // Rounded values: many windows hold two or more equal maxima, as on a constant background.
    let x = Var::from_tensor(&(rand(&[3, 4, 11, 11], 31) * 2.0)?.round()?.relu()?)?;
    let ours = x.apply_op1(MaxPool2)?;
    let port = x.apply_op1(backward_fixes::MaxPool2)?;
    assert_eq!(max_diff(&ours, &port), 0.0);
    let r = rand(ours.dims(), 32);
    let g1 = (&ours * &r)?.sum_all()?.backward()?;
    let g2 = (&port * &r)?.sum_all()?.backward()?;
    assert_eq!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()), 0.0);
    Ok(())
}

#[test]
fn scale_shift_matches_broadcast_ops_with_every_gradient() -> R {
    for (shape, relu) in [(vec![3, 5, 4, 4], true), (vec![6, 5], false)] {
        let x = Var::from_tensor(&rand(&shape, 61))?;
        let scale = Var::from_tensor(&rand(&[5], 62))?;
        let shift = Var::from_tensor(&rand(&[5], 63))?;
        let mut b = vec![1usize; shape.len()];
        b[1] = 5;
        let reference = x
            .broadcast_mul(&scale.reshape(b.as_slice())?)?
            .broadcast_add(&shift.reshape(b.as_slice())?)?;
        let reference = if relu { reference.relu()? } else { reference };
        let fused = x.apply_op3(&scale, &shift, wna::kernels::ScaleShift { relu })?;
        assert!(max_diff(&reference, &fused) < 1e-6, "forward");
        let r = rand(&shape, 64);
        let g1 = (&reference * &r)?.sum_all()?.backward()?;
        let g2 = (&fused * &r)?.sum_all()?.backward()?;
        for (v, name) in [(&x, "x"), (&scale, "scale"), (&shift, "shift")] {
            let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(d < 1e-5, "grad {name} differs by {d}");
        }
    }
    Ok(())
}

#[test]
fn leaky_relu_matches_direct_loops_forward_and_backward() -> R {
    // 300,699 values: two rayon chunks, the last one short and not a whole number of vectors.
    let x = Var::from_tensor(&rand(&[301, 999], 11))?;
    let r = rand(&[301, 999], 12);
    let slope = 0.2f32;
    let ours = x.apply_op1(kernels::LeakyRelu { slope })?;
    let grads = (&ours * &r)?.sum_all()?.backward()?;
    let (xv, rv) = (values(&x), values(&r));
    let y: Vec<f32> = xv
        .iter()
        .map(|&v| if v > 0.0 { v } else { v * slope })
        .collect();
    let gx: Vec<f32> = xv
        .iter()
        .zip(&rv)
        .map(|(&v, &g)| if v > 0.0 { g } else { g * slope })
        .collect();
    assert_eq!(values(&ours), y, "forward");
    assert_eq!(values(grads.get(&x).unwrap()), gx, "gradient");
    // candle-nn's composite gives the same values wherever x != 0.
    let theirs = candle_nn::ops::leaky_relu(&x, slope as f64)?;
    assert!(max_diff(&ours, &theirs) < 1e-7, "forward vs candle-nn");
    Ok(())
}
