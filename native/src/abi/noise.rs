//! White-noise analysis across the boundary (`ffi/noise.ts`): the analysis that returns the maps,
//! the cheap classification sweep, the fit behind `data` noise, and template scores.

use super::{export, insert, optional, slice, slice_mut, with_data_noise, with_model, Object};
use crate::arrays::Arrays;
use crate::error::Result;
use crate::noise::{self, AnalysisConfig, ClassifyConfig, DataNoise, NoiseKind, PIXELS, SIDE};
use crate::progress::Progress;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum NoiseName {
    Uniform,
    Gaussian,
    Data,
}

/// The noise of a stream, as both option structs carry it.
fn noise_kind(
    name: NoiseName,
    mean: f32,
    std: f32,
    contrast: f32,
    data_noise: Option<u64>,
) -> Result<NoiseKind> {
    Ok(match name {
        NoiseName::Uniform => NoiseKind::Uniform,
        NoiseName::Gaussian => NoiseKind::Gaussian { mean, std },
        NoiseName::Data => {
            let Some(handle) = data_noise else {
                crate::bail!(
                    InvalidArgument,
                    "noise: \"data\" noise needs the data's statistics first: call \
                     fitDataNoise(images) on the model"
                );
            };
            NoiseKind::Data {
                fit: with_data_noise(handle, |fit| Ok(fit.clone()))?,
                contrast,
            }
        }
    })
}

/// `Model.analyse`'s options. Every field but `dataNoise` (the handle of a fit, for `data`
/// noise) is required: the defaults live in `ffi/noise.ts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AnalyseOptions {
    samples: u64,
    batch_size: usize,
    seed: u64,
    noise: NoiseName,
    noise_mean: f32,
    noise_std: f32,
    contrast: f32,
    data_noise: Option<u64>,
    gamma: f32,
    threshold: f32,
    sta_samples: u64,
    layers: Vec<String>,
    keep_stimuli: usize,
}

/// Stimuli kept for the report at most: each is 3 KB.
const MAX_KEPT_STIMULI: usize = 10_000;

impl AnalyseOptions {
    fn config(self) -> Result<AnalysisConfig> {
        Ok(AnalysisConfig {
            samples: self.samples,
            batch_size: self.batch_size,
            seed: self.seed,
            noise: noise_kind(
                self.noise,
                self.noise_mean,
                self.noise_std,
                self.contrast,
                self.data_noise,
            )?,
            gamma: self.gamma,
            threshold: self.threshold,
            sta_samples: self.sta_samples,
            layers: self.layers,
            keep_stimuli: self.keep_stimuli.min(MAX_KEPT_STIMULI),
        })
    }
}

/// `Model.classify`'s options (the pattern and its weights come as buffers).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClassifyOptions {
    samples: u64,
    batch_size: usize,
    seed: u64,
    noise: NoiseName,
    noise_mean: f32,
    noise_std: f32,
    contrast: f32,
    data_noise: Option<u64>,
    gamma: f32,
}

impl ClassifyOptions {
    fn config(self) -> Result<ClassifyConfig> {
        Ok(ClassifyConfig {
            samples: self.samples,
            batch_size: self.batch_size,
            seed: self.seed,
            noise: noise_kind(
                self.noise,
                self.noise_mean,
                self.noise_std,
                self.contrast,
                self.data_noise,
            )?,
            gamma: self.gamma,
        })
    }
}

/// The summary of a data-noise fit's array set (its arrays: `mean` and `factor`).
#[derive(Serialize)]
struct FitSummary {
    images: u64,
}

export! {
    /// Runs `noise::analyse`; `pixels` may be null (pure noise). Returns an array-set handle.
    fn wna_analyse(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        options: *const u8,
        options_len: usize,
        progress: *mut u64,
        handle_out: *mut u64,
    ) {
        let cfg = super::options::<AnalyseOptions>(options, options_len, "analyse")?.config()?;
        let images = optional(pixels, n_values, "images")?;
        let arrays = with_model(handle, |m| {
            noise::analyse(m, images, &cfg, Progress::from_ptr(progress))
        })?;
        insert(Object::Arrays(arrays), handle_out)
    }
}

export! {
    /// Runs `noise::classify`: the predicted class of each stimulus (`pixels` null for pure
    /// noise), once per weight of `pattern` (null for none). `out` holds
    /// `max(1, n_weights) * n` classes.
    fn wna_classify(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        pattern: *const f32,
        pattern_len: usize,
        weights: *const f32,
        n_weights: usize,
        options: *const u8,
        options_len: usize,
        progress: *mut u64,
        out: *mut u32,
        out_len: usize,
    ) {
        let cfg = super::options::<ClassifyOptions>(options, options_len, "classify")?.config()?;
        let images = optional(pixels, n_values, "images")?;
        let pattern = optional(pattern, pattern_len, "pattern")?;
        let weights = slice(weights, n_weights, "weights")?;
        let out = slice_mut(out, out_len, "predictions")?;
        let classes = with_model(handle, |m| {
            noise::classify(m, images, pattern, weights, &cfg, Progress::from_ptr(progress))
        })?;
        super::copy_out(out, &classes, "predictions")
    }
}

export! {
    /// Fits `data` noise to `pixels` on the model's device. Returns the fit's handle (for the
    /// `dataNoise` option) and an array set with its `mean` (28 x 28) and Cholesky `factor`
    /// (784 x 784).
    fn wna_fit_data_noise(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        fit_out: *mut u64,
        arrays_out: *mut u64,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let fit = with_model(handle, |m| DataNoise::fit(px, &m.device))?;
        let mut arrays = Arrays::default();
        arrays.insert("mean", vec![SIDE, SIDE], fit.mean.clone());
        arrays.insert("factor", vec![PIXELS, PIXELS], fit.factor.clone());
        arrays.set_summary(&FitSummary { images: fit.images as u64 })?;
        insert(Object::DataNoise(Arc::new(fit)), fit_out)?;
        insert(Object::Arrays(arrays), arrays_out)
    }
}

export! {
    fn wna_template_scores(
        templates: *const f32,
        classes: usize,
        pixels: *const f32,
        n_values: usize,
        centre: *const f32,
        centre_len: usize,
        out: *mut f32,
        out_len: usize,
    ) {
        let t = slice(templates, classes * PIXELS, "templates")?;
        let px = slice(pixels, n_values, "images")?;
        let out = slice_mut(out, out_len, "scores")?;
        let centre = optional(centre, centre_len, "centre")?;
        let scores = noise::template_scores(t, classes, px, centre, &candle_core::Device::Cpu)?;
        super::copy_out(out, &scores.flatten_all()?.to_vec1::<f32>()?, "scores")
    }
}
