//! White-noise analysis (Borji & Lin, "White Noise Analysis of Neural Networks", ICLR 2020,
//! https://arxiv.org/abs/1912.12106): stream stimuli through a model in batches and accumulate
//! per-class sums (classification images, bias histogram) and per-channel activation-weighted
//! sums (spike-triggered averages). Memory is fixed by the batch size, not the sample count.

mod analyse;
mod classify;
mod data_noise;
mod device_sum;
pub mod fused;
mod fused_geometry;
pub mod fused_ops;
mod layer_sums;
mod phases;
mod stimuli;
mod templates;

pub use analyse::{analyse, AnalysisConfig};
pub use classify::{classify, ClassifyConfig};
pub use data_noise::DataNoise;
pub use stimuli::{noise_tensor, NoiseKind, Stimuli, NOISE_STREAM};
pub use templates::template_scores;

pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;
