//! Predictions only: the cheap call behind the targeted attack, the gamma sweep and
//! microstimulation, which need each stimulus's class and none of the maps.

use super::analyse::check_stream;
use super::stimuli::{NoiseKind, Stimuli};
use crate::error::Result;
use crate::model::Model;
use crate::progress::Progress;
use candle_core::D;

/// The stimulus stream of a [`classify`] call.
#[derive(Debug, Clone)]
pub struct ClassifyConfig {
    /// Noise samples when no images are given.
    pub samples: u64,
    pub batch_size: usize,
    pub seed: u64,
    pub noise: NoiseKind,
    /// Stimulus = gamma * image + (1 - gamma) * noise + weight * pattern.
    pub gamma: f32,
}

/// The predicted class of every stimulus, once per weight of `pattern` (a single pass with no
/// pattern when `weights` is empty): `max(1, weights.len()) * n` classes, weight-major.
pub fn classify(
    model: &Model,
    images: Option<&[f32]>,
    pattern: Option<&[f32]>,
    weights: &[f32],
    cfg: &ClassifyConfig,
    progress: Progress,
) -> Result<Vec<u32>> {
    check_stream(
        "classify",
        cfg.batch_size,
        cfg.samples,
        cfg.gamma,
        &cfg.noise,
        images,
    )?;
    let n = images.map_or(cfg.samples, |im| (im.len() / super::PIXELS) as u64);
    let passes: Vec<f32> = if weights.is_empty() {
        vec![0.0]
    } else {
        weights.to_vec()
    };
    progress.start(n * passes.len() as u64);
    let mut out = Vec::with_capacity(n as usize * passes.len());
    for &weight in &passes {
        let stimuli = Stimuli::new(
            images,
            cfg.gamma,
            &cfg.noise,
            cfg.seed,
            pattern,
            weight,
            &model.device,
        )?;
        let mut first = 0u64;
        while first < n {
            let b = (n - first).min(cfg.batch_size as u64) as usize;
            let x = stimuli.batch(first, b)?;
            let logits = model.logits(&model.normalise(&x.reshape((b, 1, 28, 28))?)?)?;
            out.extend(logits.argmax(D::Minus1)?.to_vec1::<u32>()?);
            first += b as u64;
            progress.advance(b as u64);
        }
    }
    Ok(out)
}
