//! The CUDA twins of the training batch norm ops (`cuda/batch_norm.cu`): the batch statistics,
//! the forward and the fused backward. The launch plan is built on every target, so that the
//! emulated test (`tests/cuda_emulated_batch_norm.rs`) launches the kernels as the GPU path does;
//! the launches exist with the `cuda` feature only.

use candle_core::{Result as CResult, Shape};

/// Threads per block of every batch-norm kernel (`BN_THREADS`).
pub const THREADS: u32 = 256;
/// Blocks a reduction aims for (channels x chunks of images): a few per SM of an H100. The
/// chunks depend on the shapes alone, so every GPU adds in the same order.
const REDUCTION_BLOCKS: usize = 1024;

/// The kernels' `BnShape`: `[images, channels, spatial]` activations, reduced in chunks of
/// `per_chunk` images.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnShape {
    pub images: u32,
    pub channels: u32,
    pub spatial: u32,
    pub per_chunk: u32,
}

/// The launches for one activation shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnLaunch {
    pub shape: BnShape,
    /// Chunks of images per channel: grid y of the reductions.
    pub chunks: u32,
}

impl BnLaunch {
    pub fn new(shape: &Shape) -> CResult<Self> {
        let (images, channels, spatial) = super::channel_layout(shape)?;
        let chunks = REDUCTION_BLOCKS
            .div_ceil(channels.max(1))
            .clamp(1, images.max(1));
        let per_chunk = images.div_ceil(chunks).max(1);
        let chunks = images.div_ceil(per_chunk).max(1);
        let u32_of = |v: usize| {
            u32::try_from(v).map_err(|_| {
                candle_core::Error::Msg(format!(
                    "batch norm on CUDA: {shape:?} is beyond the kernels' 32-bit indices"
                ))
            })
        };
        if chunks > 65_535 {
            candle_core::bail!("batch norm on CUDA: {images} images are too many for one batch")
        }
        Ok(Self {
            shape: BnShape {
                images: u32_of(images)?,
                channels: u32_of(channels)?,
                spatial: u32_of(spatial)?,
                per_chunk: u32_of(per_chunk)?,
            },
            chunks: chunks as u32,
        })
    }

    /// Grid of a reduction: one block per (channel, chunk).
    pub fn reduction_grid(&self) -> (u32, u32, u32) {
        (self.shape.channels, self.chunks, 1)
    }

    /// f64 partial sums of a reduction: `[chunks][channels][2]`.
    pub fn partials_len(&self) -> usize {
        self.chunks as usize * self.shape.channels as usize * 2
    }

    /// Blocks of a `_finish` kernel: one thread per channel.
    pub fn finish_blocks(&self) -> u32 {
        self.shape.channels.div_ceil(THREADS).max(1)
    }

    /// Elements of the activations.
    pub fn len(&self) -> usize {
        let s = &self.shape;
        s.images as usize * s.channels as usize * s.spatial as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks of an element-wise pass (grid-stride loops).
    pub fn elementwise_blocks(&self) -> u32 {
        self.len().div_ceil(THREADS as usize).clamp(1, 65_535 * 8) as u32
    }
}

#[cfg(feature = "cuda")]
pub use launch::{forward, grad, statistics};

#[cfg(feature = "cuda")]
mod launch {
    use super::{BnLaunch, BnShape, THREADS};
    use crate::kernels::cuda_f32_view;
    use crate::kernels::cuda_launch::{self, fail, uninit};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::CudaDevice;
    use candle_core::{CudaStorage, Layout, Result as CResult, Shape};
    use cudarc::driver::{CudaSlice, CudaViewMut, LaunchConfig, PushKernelArg};

    const MODULE: &str = "wna_batch_norm";
    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/batch_norm.ptx"));

    // SAFETY: `BnShape` is `#[repr(C)]` plain u32s, the layout of the kernels' `BnShape`.
    unsafe impl cudarc::driver::DeviceRepr for BnShape {}

    fn config(grid: (u32, u32, u32)) -> LaunchConfig {
        cuda_launch::config(grid, THREADS)
    }

    /// A `_finish` kernel: `out` from the chunks' `partials` (one thread per channel).
    fn finish(
        dev: &CudaDevice,
        name: &str,
        plan: &BnLaunch,
        partials: &CudaSlice<f64>,
        out: &mut CudaViewMut<f32>,
    ) -> CResult<()> {
        let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        let mut args = func.builder();
        args.arg(partials);
        args.arg(&plan.chunks);
        args.arg(&plan.shape);
        args.arg(out);
        // SAFETY: the arguments match both `_finish` kernels in cuda/batch_norm.cu.
        unsafe { args.launch(config((plan.finish_blocks(), 1, 1))) }.map_err(|e| fail(name, e))?;
        Ok(())
    }

    /// `[mean; var]` per channel of `x`, as a `[2c]` tensor.
    pub fn statistics(xs: &CudaStorage, xl: &Layout) -> CResult<(CudaStorage, Shape)> {
        let plan = BnLaunch::new(xl.shape())?;
        let dev = xs.device().clone();
        let x = cuda_f32_view(xs, xl, "batch norm")?;
        // SAFETY: the kernels launched next write all of it.
        let mut partials = unsafe { uninit::<f64>(&dev, plan.partials_len())? };
        let name = "wna_bn_statistics";
        let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        let mut args = func.builder();
        args.arg(&x);
        args.arg(&plan.shape);
        args.arg(&mut partials);
        // SAFETY: the arguments match `wna_bn_statistics` in cuda/batch_norm.cu.
        unsafe { args.launch(config(plan.reduction_grid())) }.map_err(|e| fail(name, e))?;
        let c = plan.shape.channels as usize;
        // SAFETY: the kernels launched next write all of it.
        let mut out = unsafe { uninit::<f32>(&dev, 2 * c)? };
        let name = "wna_bn_statistics_finish";
        finish(&dev, name, &plan, &partials, &mut out.slice_mut(..))?;
        Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from(2 * c)))
    }

    pub fn forward(
        op: &super::super::BatchNorm,
        (xs, xl): (&CudaStorage, &Layout),
        (gs, gl): (&CudaStorage, &Layout),
        (bs, bl): (&CudaStorage, &Layout),
    ) -> CResult<(CudaStorage, Shape)> {
        let plan = BnLaunch::new(xl.shape())?;
        let dev = xs.device().clone();
        let (x, gamma, beta) = (
            cuda_f32_view(xs, xl, "batch norm")?,
            cuda_f32_view(gs, gl, "batch norm")?,
            cuda_f32_view(bs, bl, "batch norm")?,
        );
        let (mean, invstd) = (dev.memcpy_stod(&op.mean)?, dev.memcpy_stod(&op.invstd)?);
        // SAFETY: the kernels launched next write all of it.
        let mut y = unsafe { uninit::<f32>(&dev, plan.len())? };
        if !plan.is_empty() {
            let name = "wna_bn_forward";
            let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
            let relu = op.relu as u32;
            let mut args = func.builder();
            args.arg(&x);
            args.arg(&gamma);
            args.arg(&beta);
            args.arg(&mean);
            args.arg(&invstd);
            args.arg(&mut y);
            args.arg(&plan.shape);
            args.arg(&relu);
            // SAFETY: the arguments match `wna_bn_forward`.
            unsafe { args.launch(config((plan.elementwise_blocks(), 1, 1))) }
                .map_err(|e| fail(name, e))?;
        }
        Ok((CudaStorage::wrap_cuda_slice(y, dev), xl.shape().clone()))
    }

    /// `[dx, dgamma, dbeta]` flat, as the CPU op returns them.
    pub fn grad(
        op: &super::super::BatchNormGrad,
        (xs, xl): (&CudaStorage, &Layout),
        (ys, yl): (&CudaStorage, &Layout),
        (gs, gl): (&CudaStorage, &Layout),
    ) -> CResult<(CudaStorage, Shape)> {
        let plan = BnLaunch::new(xl.shape())?;
        let dev = xs.device().clone();
        let (x, y, dy) = (
            cuda_f32_view(xs, xl, "batch norm grad")?,
            cuda_f32_view(ys, yl, "batch norm grad")?,
            cuda_f32_view(gs, gl, "batch norm grad")?,
        );
        let (mean, invstd, gamma) = (
            dev.memcpy_stod(&op.mean)?,
            dev.memcpy_stod(&op.invstd)?,
            dev.memcpy_stod(&op.gamma)?,
        );
        let (len, c) = (plan.len(), plan.shape.channels as usize);
        let relu = op.relu as u32;
        // SAFETY: the kernels launched next write all of it.
        let mut partials = unsafe { uninit::<f64>(&dev, plan.partials_len())? };
        let name = "wna_bn_grad_sums";
        let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        let mut args = func.builder();
        args.arg(&x);
        args.arg(&y);
        args.arg(&dy);
        args.arg(&mean);
        args.arg(&invstd);
        args.arg(&plan.shape);
        args.arg(&relu);
        args.arg(&mut partials);
        // SAFETY: the arguments match `wna_bn_grad_sums`.
        unsafe { args.launch(config(plan.reduction_grid())) }.map_err(|e| fail(name, e))?;

        // SAFETY: the kernels launched next write all of it.
        let mut out = unsafe { uninit::<f32>(&dev, len + 2 * c)? };
        finish(
            &dev,
            "wna_bn_grad_finish",
            &plan,
            &partials,
            &mut out.slice_mut(len..),
        )?;
        if len > 0 {
            // The sums are only read; a mutable view is how cudarc passes part of a buffer.
            let (mut dx, mut sums) = out.split_at_mut(len);
            let batch_statistics = op.batch_statistics as u32;
            let name = "wna_bn_grad_input";
            let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
            let mut args = func.builder();
            args.arg(&x);
            args.arg(&y);
            args.arg(&dy);
            args.arg(&mean);
            args.arg(&invstd);
            args.arg(&gamma);
            args.arg(&mut sums);
            args.arg(&plan.shape);
            args.arg(&relu);
            args.arg(&batch_statistics);
            args.arg(&mut dx);
            // SAFETY: the arguments match `wna_bn_grad_input`.
            unsafe { args.launch(config((plan.elementwise_blocks(), 1, 1))) }
                .map_err(|e| fail(name, e))?;
        }
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from(len + 2 * c),
        ))
    }
}
