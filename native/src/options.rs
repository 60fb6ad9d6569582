//! The JSON options of the C ABI, parsed by serde: an unknown key or a value of the wrong type
//! is an error that names it, never silently ignored.

use crate::error::{Error, Result};
use crate::gan::GanConfig;
use crate::model::Model;
use crate::models::builtin;
use crate::noise::{AnalysisConfig, ClassifyConfig, NoiseKind};
use crate::optim::Kind;
use crate::spec::NetSpec;
use crate::train::TrainConfig;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Parses `text` as the options of `what`.
pub fn parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::InvalidArgument(format!("{what}: invalid options: {e}")))
}

/// `Model.create`'s options: a built-in `model` by name, or a whole `spec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelOptions {
    pub model: Option<String>,
    pub spec: Option<NetSpec>,
    pub classes: Option<usize>,
    pub blocks: Option<Vec<usize>>,
    pub seed: Option<u64>,
    pub mean: Option<f32>,
    pub std: Option<f32>,
    pub device: Option<String>,
}

impl ModelOptions {
    /// The spec to build: the one given, or the named built-in's.
    pub fn net_spec(&self) -> Result<NetSpec> {
        match (&self.model, &self.spec) {
            (Some(name), None) => {
                let blocks = match self.blocks.as_deref() {
                    None => None,
                    Some(&[a, b, c, d]) => Some([a, b, c, d]),
                    Some(b) => crate::bail!(
                        InvalidArgument,
                        "model: blocks needs 4 numbers (one per stage), got {}",
                        b.len()
                    ),
                };
                builtin::spec(name, self.classes.unwrap_or(10), blocks)
            }
            (None, Some(spec)) => {
                if self.classes.is_some() || self.blocks.is_some() {
                    crate::bail!(
                        InvalidArgument,
                        "model: classes and blocks apply to built-in models; a spec sets them in \
                         its layers"
                    );
                }
                spec.shapes()?;
                Ok(spec.clone())
            }
            _ => crate::bail!(
                InvalidArgument,
                "model: give either a built-in model name or a spec, not {}",
                if self.model.is_some() {
                    "both"
                } else {
                    "neither"
                }
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OptimizerName {
    Adam,
    Sgd,
    Adadelta,
}

/// One training epoch's options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrainOptions {
    batch_size: Option<usize>,
    lr_max: Option<f64>,
    lr_min: Option<f64>,
    weight_decay: Option<f64>,
    total_steps: u64,
    optimizer: Option<OptimizerName>,
    momentum: Option<f64>,
    nesterov: Option<bool>,
    seed: Option<u64>,
    epoch: u64,
    mixup: Option<bool>,
}

impl TrainOptions {
    pub fn config(&self) -> TrainConfig {
        let optimizer = match self.optimizer.unwrap_or(OptimizerName::Adam) {
            OptimizerName::Adam => Kind::ADAM,
            OptimizerName::Sgd => Kind::Sgd {
                momentum: self.momentum.unwrap_or(Kind::SGD_MOMENTUM),
                nesterov: self.nesterov.unwrap_or(false),
            },
            OptimizerName::Adadelta => Kind::ADADELTA,
        };
        TrainConfig {
            batch_size: self.batch_size.unwrap_or(128),
            lr_max: self.lr_max.unwrap_or(1e-3),
            lr_min: self.lr_min.unwrap_or(1e-5),
            weight_decay: self.weight_decay.unwrap_or(1e-4),
            total_steps: self.total_steps,
            optimizer,
            seed: self.seed.unwrap_or(0),
            epoch: self.epoch,
            mixup: self.mixup.unwrap_or(false),
        }
    }
}

/// One GAN epoch's options; the defaults are the classic MLP GAN's (Adam 2e-4, beta1 0.5,
/// batch 128), defined once here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GanOptions {
    batch_size: Option<usize>,
    lr: Option<f64>,
    beta1: Option<f64>,
    beta2: Option<f64>,
    seed: Option<u64>,
    epoch: u64,
}

impl GanOptions {
    pub fn config(&self) -> GanConfig {
        GanConfig {
            batch_size: self.batch_size.unwrap_or(128),
            lr: self.lr.unwrap_or(2e-4),
            beta1: self.beta1.unwrap_or(0.5),
            beta2: self.beta2.unwrap_or(0.999),
            seed: self.seed.unwrap_or(0),
            epoch: self.epoch,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum NoiseName {
    Uniform,
    Gaussian,
    Data,
}

/// Gaussian noise's defaults, in pixel units.
const GAUSSIAN_MEAN: f32 = 0.5;
const GAUSSIAN_STD: f32 = 0.25;

fn noise_kind(
    model: &Model,
    name: Option<NoiseName>,
    mean: Option<f32>,
    std: Option<f32>,
    contrast: Option<f32>,
) -> Result<NoiseKind> {
    Ok(match name.unwrap_or(NoiseName::Uniform) {
        NoiseName::Uniform => NoiseKind::Uniform,
        NoiseName::Gaussian => NoiseKind::Gaussian {
            mean: mean.unwrap_or(GAUSSIAN_MEAN),
            std: std.unwrap_or(GAUSSIAN_STD),
        },
        NoiseName::Data => NoiseKind::Data {
            fit: model.data_noise.clone().ok_or_else(|| {
                Error::InvalidArgument(
                    "noise: \"data\" noise needs the data's statistics first: call \
                     fitDataNoise(images) on the model"
                        .into(),
                )
            })?,
            contrast: contrast.unwrap_or(1.0),
        },
    })
}

/// `Model.analyse`'s options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalyseOptions {
    samples: Option<u64>,
    batch_size: Option<usize>,
    seed: Option<u64>,
    noise: Option<NoiseName>,
    noise_mean: Option<f32>,
    noise_std: Option<f32>,
    contrast: Option<f32>,
    gamma: Option<f32>,
    threshold: Option<f32>,
    sta_samples: Option<u64>,
    layers: Option<Vec<String>>,
    keep_stimuli: Option<usize>,
}

impl AnalyseOptions {
    pub fn config(self, model: &Model) -> Result<AnalysisConfig> {
        let d = AnalysisConfig::default();
        Ok(AnalysisConfig {
            samples: self.samples.unwrap_or(d.samples),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            seed: self.seed.unwrap_or(d.seed),
            noise: noise_kind(
                model,
                self.noise,
                self.noise_mean,
                self.noise_std,
                self.contrast,
            )?,
            gamma: self.gamma.unwrap_or(d.gamma),
            threshold: self.threshold.unwrap_or(d.threshold),
            sta_samples: self.sta_samples.unwrap_or(d.sta_samples),
            layers: self.layers.unwrap_or_default(),
            keep_stimuli: self.keep_stimuli.unwrap_or(0).min(10_000),
        })
    }
}

/// `Model.classify`'s options (the pattern and its weights come as buffers).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClassifyOptions {
    samples: Option<u64>,
    batch_size: Option<usize>,
    seed: Option<u64>,
    noise: Option<NoiseName>,
    noise_mean: Option<f32>,
    noise_std: Option<f32>,
    contrast: Option<f32>,
    gamma: Option<f32>,
}

impl ClassifyOptions {
    pub fn config(self, model: &Model) -> Result<ClassifyConfig> {
        let d = AnalysisConfig::default();
        Ok(ClassifyConfig {
            samples: self.samples.unwrap_or(d.samples),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            seed: self.seed.unwrap_or(d.seed),
            noise: noise_kind(
                model,
                self.noise,
                self.noise_mean,
                self.noise_std,
                self.contrast,
            )?,
            gamma: self.gamma.unwrap_or(0.0),
        })
    }
}

/// `augment`'s options: the transforms in order, and the seed and epoch that key the draws.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentOptions {
    pub transforms: Vec<crate::augment::Transform>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub epoch: u64,
}

/// `convertOnnx`'s request: the ONNX file, where its converted weights go, and the spec's name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OnnxOptions {
    pub path: String,
    pub weights: String,
    pub name: String,
}
