//! The Winograd F(4x4, 3x3) path of the conv kernel against direct f64 loops: its transforms
//! round, so it is held to an error bound relative to the size of the terms, on the shapes of
//! `larger` and on planes that tiles of 4 do not divide.

use candle_core::{Device, Tensor};
use wna::kernels::{Conv2d, ConvGeometry};

type R = candle_core::Result<()>;

fn uniform(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let p = wna::philox::Philox::new(seed, 11, 0);
    let mut v = vec![0f32; len];
    p.fill_uniform(&mut v);
    v.iter().map(|x| scale * (2.0 * x - 1.0)).collect()
}

/// `y = conv(x, w) + b` (3x3, stride 1, padding 1) in f64, and beside it the sum of the terms'
/// magnitudes, `|b| + sum |w x|`, the scale any f32 summation's error is proportional to.
fn direct(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (n, c, k, h, wd): (usize, usize, usize, usize, usize),
) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0f64; n * k * h * wd];
    let mut magnitude = vec![0f64; y.len()];
    for ni in 0..n {
        for ki in 0..k {
            for oy in 0..h {
                for ox in 0..wd {
                    let at = ((ni * k + ki) * h + oy) * wd + ox;
                    let (mut sum, mut size) = (b[ki] as f64, (b[ki] as f64).abs());
                    for ci in 0..c {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = (oy + ky, ox + kx);
                                if iy < 1 || ix < 1 || iy > h || ix > wd {
                                    continue;
                                }
                                let term = w[((ki * c + ci) * 3 + ky) * 3 + kx] as f64
                                    * x[((ni * c + ci) * h + iy - 1) * wd + ix - 1] as f64;
                                sum += term;
                                size += term.abs();
                            }
                        }
                    }
                    y[at] = sum;
                    magnitude[at] = size;
                }
            }
        }
    }
    (y, magnitude)
}

#[test]
fn winograd_convolution_matches_direct_loops_within_its_rounding() -> R {
    // (batch, c_in, c_out, height, width): `larger`'s 7x7 and 14x14 planes (one short last
    // group each), planes of 5 and 9 (partial tiles at the edges), a non-square plane, and a
    // single image (lanes past the last tile).
    for (n, c, k, h, wd) in [
        (37, 64, 16, 14, 14),
        (37, 64, 32, 7, 7),
        (5, 64, 24, 5, 9),
        (3, 128, 16, 9, 9),
        (1, 64, 8, 7, 7),
    ] {
        let geometry = ConvGeometry {
            batch: n,
            c_in: c,
            height: h,
            width: wd,
            c_out: k,
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            padding: 1,
        };
        assert!(geometry.winograd(), "n{n} c{c} k{k} {h}x{wd} takes im2col");
        let x = uniform(n * c * h * wd, 1, 1.0);
        // He-like kernel scale, as trained nets have: outputs of order 1.
        let w = uniform(k * c * 9, 2, (6.0 / (9.0 * c as f32)).sqrt());
        let b = uniform(k, 3, 0.5);
        let (expected, magnitude) = direct(&x, &w, &b, (n, c, k, h, wd));
        let conv = Conv2d {
            stride: 1,
            padding: 1,
        };
        let ours = Tensor::from_vec(x, (n, c, h, wd), &Device::Cpu)?.apply_op3_no_bwd(
            &Tensor::from_vec(w, (k, c, 3, 3), &Device::Cpu)?,
            &Tensor::from_vec(b, k, &Device::Cpu)?,
            &conv,
        )?;
        let ours: Vec<f32> = ours.flatten_all()?.to_vec1()?;
        let worst = ours
            .iter()
            .zip(&expected)
            .zip(&magnitude)
            .map(|((&o, &e), &m)| (o as f64 - e).abs() / m)
            .fold(0.0, f64::max);
        // f32 im2col stays near 1e-7 of the terms' size; F(4x4, 3x3) measured 0.5-2e-6 here.
        // A coefficient off by 1e-4 gave 7e-5, a wrong tile offset gives errors of order 1.
        assert!(
            worst < 5e-6,
            "n{n} c{c} k{k} {h}x{wd}: error {worst:e} of the terms' size"
        );
    }
    Ok(())
}

#[test]
fn winograd_takes_only_wide_3x3_same_size_convolutions() {
    let base = ConvGeometry {
        batch: 1,
        c_in: 64,
        height: 7,
        width: 7,
        c_out: 64,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        padding: 1,
    };
    assert!(base.winograd());
    for other in [
        ConvGeometry { c_in: 32, ..base },
        ConvGeometry { stride: 2, ..base },
        ConvGeometry { padding: 0, ..base },
        ConvGeometry {
            kernel_h: 5,
            kernel_w: 5,
            padding: 2,
            ..base
        },
    ] {
        assert!(!other.winograd(), "{other:?}");
    }
}
