//! The stimuli of an analysis: noise of one of several kinds, optionally mixed with real images
//! (`gamma`) and shifted by a weighted pattern, made batch by batch on the model's device.

use super::data_noise::DataNoise;
use super::PIXELS;
use crate::error::{Error, Result};
use crate::philox::Philox;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// The Philox stream white-noise stimuli are drawn from.
pub const NOISE_STREAM: u32 = 0x4e01_5e00;

/// The distribution the noise pixels are drawn from.
#[derive(Debug, Clone)]
pub enum NoiseKind {
    /// Independent pixels, uniform in [0, 1].
    Uniform,
    /// Independent pixels, normal with this mean and std.
    Gaussian { mean: f32, std: f32 },
    /// Gaussian with the mean and covariance of a set of real images (fitted by `DataNoise`),
    /// the deviation from the mean scaled by `contrast`, clipped to [0, 1].
    Data { fit: Arc<DataNoise>, contrast: f32 },
}

impl NoiseKind {
    /// The independent-pixel noise this kind starts from.
    fn base(&self) -> BaseNoise {
        match self {
            NoiseKind::Uniform => BaseNoise::Uniform,
            NoiseKind::Gaussian { mean, std } => BaseNoise::Normal {
                mean: *mean,
                std: *std,
            },
            NoiseKind::Data { .. } => BaseNoise::Normal {
                mean: 0.0,
                std: 1.0,
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum BaseNoise {
    Uniform,
    Normal { mean: f32, std: f32 },
}

/// Fills `out` with independent-pixel noise of samples `first..first + out.len() / 784`.
fn fill_base(out: &mut [f32], first: u64, seed: u64, base: BaseNoise) {
    out.par_chunks_mut(PIXELS).enumerate().for_each(|(i, img)| {
        let rng = Philox::new(seed, NOISE_STREAM, first + i as u64);
        match base {
            BaseNoise::Uniform => rng.fill_uniform(img),
            BaseNoise::Normal { mean, std } => rng.fill_normal(img, mean, std),
        }
    });
}

/// The noise of samples `first..first + count` as a `[count, 784]` tensor on `device`. The same
/// seed gives the same noise whatever the batching, and the same on every device.
pub fn noise_tensor(
    first: u64,
    count: usize,
    seed: u64,
    kind: &NoiseKind,
    device: &Device,
) -> Result<Tensor> {
    let base = if device.is_cpu() {
        let mut v = vec![0f32; count * PIXELS];
        fill_base(&mut v, first, seed, kind.base());
        Tensor::from_vec(v, (count, PIXELS), device)?
    } else {
        Tensor::zeros(1, DType::F32, device)?.apply_op1(DeviceNoise {
            first,
            count,
            seed,
            base: kind.base(),
        })?
    };
    match kind {
        NoiseKind::Data { fit, contrast } => fit.transform(&base, *contrast),
        _ => Ok(base),
    }
}

/// The noise of samples `first..first + count` as a `[count, 784]` tensor, made on the device
/// of the (otherwise unused) input: on a GPU by `cuda/noise.cu`, so the pixels never cross the
/// bus, and bit-identical to `fill_base` for uniform noise.
struct DeviceNoise {
    first: u64,
    count: usize,
    seed: u64,
    base: BaseNoise,
}

#[cfg(feature = "cuda")]
const NOISE_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/noise.ptx"));

impl CustomOp1 for DeviceNoise {
    fn name(&self) -> &'static str {
        "wna-noise"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut v = vec![0f32; self.count * PIXELS];
        fill_base(&mut v, self.first, self.seed, self.base);
        Ok((CpuStorage::F32(v), Shape::from((self.count, PIXELS))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use cudarc::driver::{LaunchConfig, PushKernelArg};
        let dev = s.device().clone();
        let name = match self.base {
            BaseNoise::Uniform => "wna_noise_uniform",
            BaseNoise::Normal { .. } => "wna_noise_normal",
        };
        let func = dev.get_or_load_custom_func(name, "wna_noise", NOISE_PTX)?;
        let n_blocks = (self.count * PIXELS / 4) as u64;
        // SAFETY: the kernel writes every element (one float4 per thread, n_blocks threads).
        let mut out = unsafe { dev.alloc::<f32>(self.count * PIXELS)? };
        let (seed_lo, seed_hi) = (self.seed as u32, (self.seed >> 32) as u32);
        let (mean, std) = match self.base {
            BaseNoise::Normal { mean, std } => (mean, std),
            BaseNoise::Uniform => (0.0, 1.0),
        };
        let mut b = func.builder();
        b.arg(&mut out);
        b.arg(&self.first);
        b.arg(&seed_lo);
        b.arg(&seed_hi);
        b.arg(&NOISE_STREAM);
        b.arg(&n_blocks);
        if matches!(self.base, BaseNoise::Normal { .. }) {
            b.arg(&mean);
            b.arg(&std);
        }
        let cfg = LaunchConfig {
            grid_dim: (n_blocks.div_ceil(256) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match the kernel's signature in cuda/noise.cu.
        unsafe { b.launch(cfg) }
            .map_err(|e| candle_core::Error::Msg(format!("{name}: launch failed: {e}")))?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from((self.count, PIXELS)),
        ))
    }
}

/// How each stimulus is made: `gamma * image + (1 - gamma) * noise + weight * pattern`, where
/// `gamma` is 0 when there are no images.
pub struct Stimuli<'a> {
    images: Option<&'a [f32]>,
    gamma: f32,
    noise: &'a NoiseKind,
    seed: u64,
    /// `weight * pattern` as a `[1, 784]` tensor on the device, made once per run.
    pattern: Option<Tensor>,
    device: Device,
}

impl<'a> Stimuli<'a> {
    pub fn new(
        images: Option<&'a [f32]>,
        gamma: f32,
        noise: &'a NoiseKind,
        seed: u64,
        pattern: Option<&[f32]>,
        weight: f32,
        device: &Device,
    ) -> Result<Self> {
        if let Some(p) = pattern {
            if p.len() != PIXELS {
                return Err(Error::Shape {
                    op: "pattern",
                    expected: "784 values".into(),
                    got: p.len().to_string(),
                });
            }
            if p.iter().any(|v| !v.is_finite()) || !weight.is_finite() {
                crate::bail!(
                    NotFinite,
                    "stimuli: the pattern or its weight is not finite"
                );
            }
        }
        let pattern = match pattern {
            Some(p) if weight != 0.0 => {
                let w: Vec<f32> = p.iter().map(|v| weight * v).collect();
                Some(Tensor::from_vec(w, (1, PIXELS), device)?)
            }
            _ => None,
        };
        Ok(Self {
            images,
            gamma: if images.is_some() { gamma } else { 0.0 },
            noise,
            seed,
            pattern,
            device: device.clone(),
        })
    }

    /// Stimuli `first..first + count` as a `[count, 784]` tensor on the device.
    pub fn batch(&self, first: u64, count: usize) -> Result<Tensor> {
        let noise = if self.gamma < 1.0 {
            Some(noise_tensor(
                first,
                count,
                self.seed,
                self.noise,
                &self.device,
            )?)
        } else {
            None
        };
        let x = match (self.images, noise) {
            (Some(images), noise) => {
                let start = first as usize * PIXELS;
                let img = Tensor::from_slice(
                    &images[start..start + count * PIXELS],
                    (count, PIXELS),
                    &self.device,
                )?;
                match noise {
                    Some(n) => ((img * self.gamma as f64)? + (n * (1.0 - self.gamma) as f64)?)?,
                    None => img,
                }
            }
            (None, Some(n)) => n,
            (None, None) => unreachable!("gamma is 0 without images"),
        };
        Ok(match &self.pattern {
            Some(p) => x.broadcast_add(p)?,
            None => x,
        })
    }
}
