//! Attributions of an objective (usually the target class's logit) to the input pixels, in
//! Captum's conventions: saliency (|gradient| by default), gradient x input, integrated gradients
//! (Sundararajan et al., 2017) with Gauss-Legendre or Riemann rules, and SmoothGrad (Smilkov et
//! al., 2017). Inputs are pixels in [0, 1]; the model's normalisation is part of the function.

use crate::arrays::Arrays;
use crate::error::Result;
use crate::model::{check_images, Model};
use crate::objective::{Objective, Target};
use crate::philox::Philox;
use crate::progress::Progress;
use candle_core::Tensor;
use serde::Deserialize;

const PIXELS: usize = 784;

/// How integrated gradients places its steps on the path from the baseline to the image.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    GaussLegendre,
    RiemannLeft,
    RiemannRight,
    RiemannMiddle,
    RiemannTrapezoid,
}

/// The attribution methods.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Saliency,
    GradientXInput,
    IntegratedGradients,
    SmoothGrad,
}

/// Options of [`attribute`], with Captum's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AttributionOptions {
    pub method: Method,
    pub targets: Vec<Target>,
    /// Saliency and SmoothGrad: the gradient's magnitude (Captum's default) or its sign kept.
    #[serde(default = "yes")]
    pub absolute: bool,
    /// Integrated gradients' baseline in pixel units: one value for every pixel, or an image.
    #[serde(default)]
    pub baseline: Option<Vec<f32>>,
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default = "default_rule")]
    pub rule: Rule,
    /// Rows per forward/backward pass (images x steps, or images x samples).
    #[serde(default = "default_internal_batch")]
    pub internal_batch: usize,
    /// SmoothGrad's noisy copies per image and their standard deviation in pixel units.
    #[serde(default = "default_samples")]
    pub samples: usize,
    #[serde(default = "default_sigma")]
    pub sigma: f32,
    #[serde(default)]
    pub seed: u64,
}

fn yes() -> bool {
    true
}
fn default_steps() -> usize {
    50
}
fn default_rule() -> Rule {
    Rule::GaussLegendre
}
fn default_internal_batch() -> usize {
    500
}
fn default_samples() -> usize {
    25
}
fn default_sigma() -> f32 {
    0.15
}

/// The `n` nodes and weights of Gauss-Legendre quadrature on [0, 1] (Newton on the Legendre
/// polynomial from Chebyshev starting points; as numpy's `leggauss`, mapped from [-1, 1]).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            // P_n(x) and P_n'(x) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { x } else { p1 };
            let pm = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (x * pn - pm) / (x * x - 1.0);
            let dx = pn / dp;
            x -= dx;
            if dx.abs() < 1e-15 {
                break;
            }
        }
        nodes[n - 1 - i] = 0.5 * (x + 1.0);
        weights[n - 1 - i] = 0.5 * 2.0 / ((1.0 - x * x) * dp * dp);
    }
    (nodes, weights)
}

/// The path positions (alphas) and step weights of a rule with `n` steps, on [0, 1].
pub fn path_steps(rule: Rule, n: usize) -> (Vec<f64>, Vec<f64>) {
    let nf = n as f64;
    match rule {
        Rule::GaussLegendre => gauss_legendre(n),
        Rule::RiemannLeft => ((0..n).map(|k| k as f64 / nf).collect(), vec![1.0 / nf; n]),
        Rule::RiemannRight => (
            (0..n).map(|k| (k + 1) as f64 / nf).collect(),
            vec![1.0 / nf; n],
        ),
        Rule::RiemannMiddle => (
            (0..n).map(|k| (k as f64 + 0.5) / nf).collect(),
            vec![1.0 / nf; n],
        ),
        Rule::RiemannTrapezoid => {
            let h = 1.0 / (nf - 1.0);
            let mut w = vec![h; n];
            w[0] = h / 2.0;
            w[n - 1] = h / 2.0;
            ((0..n).map(|k| k as f64 * h).collect(), w)
        }
    }
}

/// Checks the options and compiles the targets.
fn check(model: &Model, pixels: &[f32], o: &AttributionOptions) -> Result<(usize, Objective)> {
    check_images("attribute", pixels)?;
    let n = pixels.len() / PIXELS;
    if o.targets.len() != n {
        crate::bail!(
            InvalidArgument,
            "attribute: {} targets for {n} images; give one target per image",
            o.targets.len()
        );
    }
    if o.internal_batch == 0 {
        crate::bail!(InvalidArgument, "attribute: internalBatch must be > 0");
    }
    let min_steps = if o.rule == Rule::RiemannTrapezoid {
        2
    } else {
        1
    };
    if o.method == Method::IntegratedGradients && o.steps < min_steps {
        crate::bail!(
            InvalidArgument,
            "attribute: integrated gradients needs steps >= {min_steps}, got {}",
            o.steps
        );
    }
    if o.method == Method::SmoothGrad && (o.samples == 0 || o.sigma.is_nan() || o.sigma < 0.0) {
        crate::bail!(
            InvalidArgument,
            "attribute: SmoothGrad needs samples > 0 and sigma >= 0, got {} and {}",
            o.samples,
            o.sigma
        );
    }
    if let Some(b) = &o.baseline {
        if !(b.len() == 1 || b.len() == PIXELS) || b.iter().any(|v| !v.is_finite()) {
            crate::bail!(
                InvalidArgument,
                "attribute: baseline must be one finite value or a 784-pixel image, got {} values",
                b.len()
            );
        }
    }
    Ok((n, Objective::new(model, &o.targets)?))
}

/// Gradients of each row's objective, `internal_batch` rows at a time.
fn gradients(
    model: &Model,
    rows: &[f32],
    objective: &Objective,
    internal_batch: usize,
    progress: &Progress,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = rows.len() / PIXELS;
    let (mut grads, mut values) = (Vec::with_capacity(rows.len()), Vec::with_capacity(n));
    let mut start = 0;
    while start < n {
        let len = internal_batch.min(n - start);
        let x = Tensor::from_slice(
            &rows[start * PIXELS..(start + len) * PIXELS],
            (len, PIXELS),
            &model.device,
        )?;
        let (g, v) = objective.rows(start, len)?.gradients(model, &x)?;
        grads.extend(g);
        values.extend(v);
        progress.advance(len as u64);
        start += len;
    }
    Ok((grads, values))
}

/// Each row's objective, forward only, `internal_batch` rows at a time.
fn objective_values(
    model: &Model,
    rows: &[f32],
    objective: &Objective,
    internal_batch: usize,
    progress: &Progress,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(rows.len() / PIXELS);
    for (c, chunk) in rows.chunks(internal_batch * PIXELS).enumerate() {
        let len = chunk.len() / PIXELS;
        let x = model.input(chunk)?;
        out.extend(
            objective
                .rows(c * internal_batch, len)?
                .forward(model, &x)?
                .to_vec1::<f32>()?,
        );
        progress.advance(len as u64);
    }
    Ok(out)
}

/// Attributions of each image's target to its pixels, as arrays: `attributions` `[n, 28, 28]`,
/// `values` (the objective at the image) and, for integrated gradients, `baselineValues` and
/// `delta` (sum of attributions minus the objective's change along the path: completeness).
pub fn attribute(
    model: &Model,
    pixels: &[f32],
    o: &AttributionOptions,
    progress: Progress,
) -> Result<Arrays> {
    let (n, objective) = check(model, pixels, o)?;
    let mut arrays = Arrays::default();
    match o.method {
        Method::Saliency | Method::GradientXInput => {
            progress.start(n as u64);
            let (g, values) = gradients(model, pixels, &objective, o.internal_batch, &progress)?;
            let attr: Vec<f32> = match o.method {
                Method::Saliency if o.absolute => g.iter().map(|v| v.abs()).collect(),
                Method::Saliency => g,
                _ => g.iter().zip(pixels).map(|(g, x)| g * x).collect(),
            };
            arrays.insert("attributions", vec![n, 28, 28], attr);
            arrays.insert("values", vec![n], values);
        }
        Method::IntegratedGradients => {
            let (alphas, weights) = path_steps(o.rule, o.steps);
            let baseline: Vec<f32> = match &o.baseline {
                None => vec![0.0; PIXELS],
                Some(b) if b.len() == 1 => vec![b[0]; PIXELS],
                Some(b) => b.clone(),
            };
            progress.start((n * (alphas.len() + 2)) as u64);
            let attr = along_paths(
                model,
                pixels,
                &objective,
                o,
                &progress,
                |_, k, x, row| {
                    let a = alphas[k] as f32;
                    for ((r, &xv), &bv) in row.iter_mut().zip(x).zip(&baseline) {
                        *r = bv + a * (xv - bv);
                    }
                },
                alphas.len(),
                |_, k, g, total| {
                    for (t, &gv) in total.iter_mut().zip(g) {
                        *t += weights[k] * gv as f64;
                    }
                },
                |x, total| {
                    total
                        .iter()
                        .zip(x)
                        .zip(&baseline)
                        .map(|((t, &xv), &bv)| (t * (xv - bv) as f64) as f32)
                        .collect()
                },
            )?;
            let values = objective_values(model, pixels, &objective, o.internal_batch, &progress)?;
            let baselines = baseline.repeat(n);
            let base_values =
                objective_values(model, &baselines, &objective, o.internal_batch, &progress)?;
            let delta: Vec<f32> = (0..n)
                .map(|i| {
                    let sum: f64 = attr[i * PIXELS..(i + 1) * PIXELS]
                        .iter()
                        .map(|&v| v as f64)
                        .sum();
                    (sum - (values[i] - base_values[i]) as f64) as f32
                })
                .collect();
            arrays.insert("attributions", vec![n, 28, 28], attr);
            arrays.insert("values", vec![n], values);
            arrays.insert("baselineValues", vec![n], base_values);
            arrays.insert("delta", vec![n], delta);
        }
        Method::SmoothGrad => {
            let s = o.samples;
            progress.start((n * (s + 1)) as u64);
            let attr = along_paths(
                model,
                pixels,
                &objective,
                o,
                &progress,
                |i, k, x, row| {
                    // Keyed by (seed, image, sample): the noise does not depend on batching.
                    Philox::new(o.seed, 7, (i * s + k) as u64).fill_normal(row, 0.0, o.sigma);
                    for (r, &xv) in row.iter_mut().zip(x) {
                        *r += xv;
                    }
                },
                s,
                |_, _, g, total| {
                    for (t, &gv) in total.iter_mut().zip(g) {
                        *t += if o.absolute { gv.abs() } else { gv } as f64;
                    }
                },
                |_, total| total.iter().map(|t| (t / s as f64) as f32).collect(),
            )?;
            let values = objective_values(model, pixels, &objective, o.internal_batch, &progress)?;
            arrays.insert("attributions", vec![n, 28, 28], attr);
            arrays.insert("values", vec![n], values);
        }
    }
    Ok(arrays)
}

/// The shared loop of integrated gradients and SmoothGrad: `per_image` rows for each image
/// (`fill(image, k, x, row)` writes row k), their gradients accumulated per image
/// (`add(x, k, gradient, total)`), then `finish(x, total)`. Several images' rows share a pass, up
/// to `internal_batch` rows, so memory is bounded and small paths still fill a batch.
#[allow(clippy::too_many_arguments)]
fn along_paths(
    model: &Model,
    pixels: &[f32],
    objective: &Objective,
    o: &AttributionOptions,
    progress: &Progress,
    fill: impl Fn(usize, usize, &[f32], &mut [f32]),
    per_image: usize,
    add: impl Fn(&[f32], usize, &[f32], &mut [f64]),
    finish: impl Fn(&[f32], &[f64]) -> Vec<f32>,
) -> Result<Vec<f32>> {
    let n = pixels.len() / PIXELS;
    let group = (o.internal_batch / per_image).max(1);
    let mut attr = Vec::with_capacity(pixels.len());
    let mut rows = vec![0f32; group * per_image * PIXELS];
    for first in (0..n).step_by(group) {
        let images: Vec<usize> = (first..(first + group).min(n)).collect();
        let used = images.len() * per_image;
        let mut index = Vec::with_capacity(used);
        for (j, &i) in images.iter().enumerate() {
            let x = &pixels[i * PIXELS..(i + 1) * PIXELS];
            for k in 0..per_image {
                let r = j * per_image + k;
                fill(i, k, x, &mut rows[r * PIXELS..(r + 1) * PIXELS]);
                index.push(i as u32);
            }
        }
        let selected = objective.select(&index, &model.device)?;
        let (g, _) = gradients(
            model,
            &rows[..used * PIXELS],
            &selected,
            o.internal_batch,
            progress,
        )?;
        for (j, &i) in images.iter().enumerate() {
            let x = &pixels[i * PIXELS..(i + 1) * PIXELS];
            let mut total = vec![0f64; PIXELS];
            for k in 0..per_image {
                let r = j * per_image + k;
                add(x, k, &g[r * PIXELS..(r + 1) * PIXELS], &mut total);
            }
            attr.extend(finish(x, &total));
        }
    }
    Ok(attr)
}
