//! Activation maximisation (feature visualisation) for 28x28 grayscale inputs: one image per
//! target, all optimised together in one batch.
//!
//! The choices, after Olah et al., "Feature Visualization" (Distill, 2017), scaled to MNIST:
//! - Decorrelated parameterisation: the image is `sigmoid(B (s * p))`, `B` the orthonormal 2-D
//!   DCT synthesis basis and `s = 1 / max(1, |(u, v)|)` a 1/f scale, so that gradient steps are
//!   even across spatial frequencies instead of piling into the highest ones. The sigmoid keeps
//!   pixels in (0, 1), the input range the network was trained on.
//! - Transformation robustness: each step sees the images through one random affine map
//!   (jitter of up to `jitter` pixels, rotation up to `rotate` degrees, scale in `1 +- scale`),
//!   bilinear, with black (0, the MNIST background) outside the frame.
//! - Penalties: total variation (`tv`, mean absolute difference of neighbouring pixels) and L2
//!   towards mid-grey (`l2`, mean squared deviation), both per image.
//! - Adam on `p`, betas 0.9/0.999, lr 0.5 in the Fourier coefficients (the 1/f scale shrinks
//!   each coefficient's effect on the pixels; 0.5 matches the pace of 0.05 on raw pixels, measured
//!   on `smaller`) or 0.05 on pixels.

use crate::arrays::Arrays;
use crate::error::Result;
use crate::model::{check_images, Model};
use crate::objective::{Objective, Target};
use crate::philox::Philox;
use crate::progress::Progress;
use candle_core::{Device, Tensor, Var, D};
use serde::Deserialize;

const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;

/// Options of [`maximise`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FeatureVisOptions {
    pub targets: Vec<Target>,
    #[serde(default = "defaults::steps")]
    pub steps: usize,
    /// Adam's learning rate; by default 0.5 (fourier) or 0.05 (pixel).
    pub lr: Option<f64>,
    /// `fourier` (decorrelated, the default) or `pixel` (sigmoid of free pixels).
    #[serde(default = "defaults::parameterisation")]
    pub parameterisation: String,
    #[serde(default = "defaults::jitter")]
    pub jitter: f32,
    #[serde(default = "defaults::rotate")]
    pub rotate: f32,
    #[serde(default = "defaults::scale")]
    pub scale: f32,
    #[serde(default = "defaults::tv")]
    pub tv: f64,
    #[serde(default = "defaults::l2")]
    pub l2: f64,
    #[serde(default)]
    pub seed: u64,
    /// Images (pixel units) whose best value per target is reported beside the optimised one.
    #[serde(skip)]
    pub reference: Option<Vec<f32>>,
}

mod defaults {
    pub fn steps() -> usize {
        256
    }
    pub fn parameterisation() -> String {
        "fourier".into()
    }
    pub fn jitter() -> f32 {
        2.0
    }
    pub fn rotate() -> f32 {
        10.0
    }
    pub fn scale() -> f32 {
        0.1
    }
    pub fn tv() -> f64 {
        0.05
    }
    pub fn l2() -> f64 {
        0.05
    }
}

/// The 1/f-scaled DCT synthesis matrix `[784 coefficients, 784 pixels]`.
fn fourier_basis(device: &Device) -> Result<Tensor> {
    let c = |u: usize| {
        if u == 0 {
            (1.0 / SIDE as f64).sqrt()
        } else {
            (2.0 / SIDE as f64).sqrt()
        }
    };
    let cos = |u: usize, x: usize| {
        (std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / (2 * SIDE) as f64).cos()
    };
    let mut b = vec![0f32; PIXELS * PIXELS];
    for v in 0..SIDE {
        for u in 0..SIDE {
            let scale = 1.0 / ((u * u + v * v) as f64).sqrt().max(1.0);
            let k = v * SIDE + u;
            for y in 0..SIDE {
                for x in 0..SIDE {
                    b[k * PIXELS + y * SIDE + x] =
                        (scale * c(u) * c(v) * cos(u, x) * cos(v, y)) as f32;
                }
            }
        }
    }
    Ok(Tensor::from_vec(b, (PIXELS, PIXELS), device)?)
}

/// The bilinear resampling matrix `[784 source, 784 output]` of one random affine map about the
/// image centre: output pixel `q` reads the source at `A^-1 (q - c - t) + c`.
fn random_affine(o: &FeatureVisOptions, step: usize, device: &Device) -> Result<Tensor> {
    let mut u = [0f32; 4];
    Philox::new(o.seed, 11, step as u64).fill_uniform(&mut u);
    let signed = |v: f32| 2.0 * v - 1.0;
    let angle = (signed(u[0]) * o.rotate).to_radians();
    let scale = 1.0 + signed(u[1]) * o.scale;
    let (tx, ty) = (
        (signed(u[2]) * o.jitter).round(),
        (signed(u[3]) * o.jitter).round(),
    );
    let (cos, sin) = (angle.cos() / scale, angle.sin() / scale);
    let centre = (SIDE as f32 - 1.0) / 2.0;
    let mut m = vec![0f32; PIXELS * PIXELS];
    for qy in 0..SIDE {
        for qx in 0..SIDE {
            let (dx, dy) = (qx as f32 - centre - tx, qy as f32 - centre - ty);
            let sx = cos * dx + sin * dy + centre;
            let sy = -sin * dx + cos * dy + centre;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            for (oy, wy) in [(0, 1.0 - fy), (1, fy)] {
                for (ox, wx) in [(0, 1.0 - fx), (1, fx)] {
                    let (x, y) = (x0 as isize + ox, y0 as isize + oy);
                    if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) {
                        m[(y as usize * SIDE + x as usize) * PIXELS + qy * SIDE + qx] += wx * wy;
                    }
                }
            }
        }
    }
    Ok(Tensor::from_vec(m, (PIXELS, PIXELS), device)?)
}

/// Total variation and squared deviation from grey, each a per-image mean: `[n]` tensors.
fn penalties(img: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = img.dim(0)?;
    let grid = img.reshape((n, SIDE, SIDE))?;
    let dx = (grid.narrow(2, 1, SIDE - 1)? - grid.narrow(2, 0, SIDE - 1)?)?.abs()?;
    let dy = (grid.narrow(1, 1, SIDE - 1)? - grid.narrow(1, 0, SIDE - 1)?)?.abs()?;
    let tv =
        ((dx.flatten_from(1)?.mean(D::Minus1)? + dy.flatten_from(1)?.mean(D::Minus1)?)? * 0.5)?;
    let l2 = (img - 0.5)?.sqr()?.mean(D::Minus1)?;
    Ok((tv, l2))
}

/// Checks the options and compiles the targets.
fn check(model: &Model, o: &FeatureVisOptions) -> Result<Objective> {
    if o.targets.is_empty() {
        crate::bail!(InvalidArgument, "visualise: no targets");
    }
    let lr = o.lr.unwrap_or(0.5);
    if o.steps == 0 || !(lr > 0.0 && lr.is_finite()) {
        crate::bail!(
            InvalidArgument,
            "visualise: steps must be > 0 and lr a positive number, got {} and {}",
            o.steps,
            lr
        );
    }
    if !["fourier", "pixel"].contains(&o.parameterisation.as_str()) {
        crate::bail!(
            InvalidArgument,
            "visualise: unknown parameterisation \"{}\" (expected fourier, pixel)",
            o.parameterisation
        );
    }
    let ranges = [
        ("jitter", o.jitter, 0.0, 8.0),
        ("rotate", o.rotate, 0.0, 45.0),
        ("scale", o.scale, 0.0, 0.5),
    ];
    for (name, v, lo, hi) in ranges {
        if !(lo..=hi).contains(&v) {
            crate::bail!(
                InvalidArgument,
                "visualise: {name} must be in [{lo}, {hi}], got {v}"
            );
        }
    }
    if o.tv.is_nan() || o.l2.is_nan() || o.tv < 0.0 || o.l2 < 0.0 {
        crate::bail!(InvalidArgument, "visualise: tv and l2 must be >= 0");
    }
    if let Some(r) = &o.reference {
        check_images("visualise reference", r)?;
    }
    Objective::new(model, &o.targets)
}

/// Optimises one image per target. Arrays: `images` `[n, 28, 28]` (pixel units), `values` (the
/// objective at the final image, untransformed), `curve` `[steps]` (the mean objective per step)
/// and, with reference images, `referenceBest` and `referenceIndex` (each target's best image).
pub fn maximise(model: &Model, o: &FeatureVisOptions, progress: Progress) -> Result<Arrays> {
    let objective = check(model, o)?;
    let dev = &model.device;
    let n = o.targets.len();
    let (basis, lr) = if o.parameterisation == "fourier" {
        (Some(fourier_basis(dev)?), o.lr.unwrap_or(0.5))
    } else {
        (None, o.lr.unwrap_or(0.05))
    };
    let mut init = vec![0f32; n * PIXELS];
    Philox::new(o.seed, 12, 0).fill_normal(&mut init, 0.0, 0.01);
    let p = Var::from_tensor(&Tensor::from_vec(init, (n, PIXELS), dev)?)?;
    let image = |p: &Tensor| -> Result<Tensor> {
        let logits = match &basis {
            Some(b) => p.matmul(b)?,
            None => p.clone(),
        };
        Ok(candle_nn::ops::sigmoid(&logits)?)
    };
    let (mut m, mut v) = (p.as_tensor().zeros_like()?, p.as_tensor().zeros_like()?);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    let mut curve = Vec::with_capacity(o.steps);
    progress.start((o.steps + 1) as u64);
    for step in 0..o.steps {
        let img = image(p.as_tensor())?;
        let seen = img.matmul(&random_affine(o, step, dev)?)?;
        let values =
            objective.forward(model, &model.normalise(&seen.reshape((n, 1, SIDE, SIDE))?)?)?;
        let (tv, l2) = penalties(&img)?;
        let gain = ((values.clone() - (tv * o.tv)?)? - (l2 * o.l2)?)?;
        curve.push(values.mean_all()?.to_scalar::<f32>()?);
        let grads = gain.sum_all()?.neg()?.backward()?;
        let g = grads
            .get(p.as_tensor())
            .ok_or_else(|| crate::error::Error::InvalidArgument("visualise: no gradient".into()))?;
        m = ((m * b1)? + (g * (1.0 - b1))?)?;
        v = ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
        let t = (step + 1) as i32;
        let m_hat = (&m / (1.0 - b1.powi(t)))?;
        let v_hat = (&v / (1.0 - b2.powi(t)))?;
        let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
        p.set(&(p.as_tensor() - (update * lr)?)?)?;
        progress.advance(1);
    }
    let img = image(p.as_tensor())?.detach();
    let values = objective.forward(model, &model.normalise(&img.reshape((n, 1, SIDE, SIDE))?)?)?;
    let mut arrays = Arrays::default();
    arrays.insert("images", vec![n, SIDE, SIDE], img.flatten_all()?.to_vec1()?);
    arrays.insert("values", vec![n], values.to_vec1()?);
    arrays.insert("curve", vec![o.steps], curve);
    if let Some(reference) = &o.reference {
        let (best, index) = objective.best_over(model, reference)?;
        arrays.insert("referenceBest", vec![n], best);
        arrays.insert(
            "referenceIndex",
            vec![n],
            index.iter().map(|&i| i as f32).collect(),
        );
    }
    progress.advance(1);
    Ok(arrays)
}
