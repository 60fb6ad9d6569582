//! The CUDA twins of 2x2 max-pooling and its backward (`cuda/pool.cu`). The launch plan is built
//! on every target, so that the emulated test (`tests/cuda_emulated_pool.rs`) launches the
//! kernels as the GPU path does; the launches exist with the `cuda` feature only.

use candle_core::{Result as CResult, Shape};

/// Threads per block of both kernels.
pub const THREADS: u32 = 256;

/// The kernels' `PoolShape`: `planes` (images x channels) planes of `height` x `width`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: u32,
    pub height: u32,
    pub width: u32,
}

impl PoolShape {
    pub fn new(shape: &Shape) -> CResult<Self> {
        let (planes, height, width) = super::pool_dims(shape)?;
        let u32_of = |v: usize| {
            u32::try_from(v).map_err(|_| {
                candle_core::Error::Msg(format!(
                    "max pool on CUDA: {shape:?} is beyond the kernels' 32-bit indices"
                ))
            })
        };
        Ok(Self {
            planes: u32_of(planes)?,
            height: u32_of(height)?,
            width: u32_of(width)?,
        })
    }

    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.planes as usize * self.height as usize * self.width as usize
    }

    /// Elements of the pooled output.
    pub fn output_len(&self) -> usize {
        self.planes as usize * (self.height / 2) as usize * (self.width / 2) as usize
    }

    /// Blocks of a grid-stride pass over `len` elements.
    pub fn blocks(len: usize) -> u32 {
        len.div_ceil(THREADS as usize).clamp(1, 65_535 * 8) as u32
    }
}

#[cfg(feature = "cuda")]
pub use launch::{forward, grad};

#[cfg(feature = "cuda")]
mod launch {
    use super::{PoolShape, THREADS};
    use crate::kernels::cuda_f32_view;
    use crate::kernels::cuda_launch::{config, fail, uninit};
    use candle_core::backend::BackendStorage;
    use candle_core::{CudaStorage, Layout, Result as CResult, Shape};
    use cudarc::driver::PushKernelArg;

    const MODULE: &str = "wna_pool";
    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/pool.ptx"));

    // SAFETY: `PoolShape` is `#[repr(C)]` plain u32s, the layout of the kernels' `PoolShape`.
    unsafe impl cudarc::driver::DeviceRepr for PoolShape {}

    pub fn forward(xs: &CudaStorage, xl: &Layout) -> CResult<(CudaStorage, Shape)> {
        let s = PoolShape::new(xl.shape())?;
        let dev = xs.device().clone();
        let x = cuda_f32_view(xs, xl, "max pool")?;
        let len = s.output_len();
        // SAFETY: the kernel launched next writes all of it.
        let mut y = unsafe { uninit::<f32>(&dev, len)? };
        if len > 0 {
            let name = "wna_max_pool2";
            let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
            let mut args = func.builder();
            args.arg(&x);
            args.arg(&mut y);
            args.arg(&s);
            let grid = (PoolShape::blocks(len), 1, 1);
            // SAFETY: the arguments match `wna_max_pool2` in cuda/pool.cu.
            unsafe { args.launch(config(grid, THREADS)) }.map_err(|e| fail(name, e))?;
        }
        let (n, c, h, w) = xl.shape().dims4()?;
        Ok((
            CudaStorage::wrap_cuda_slice(y, dev),
            Shape::from((n, c, h / 2, w / 2)),
        ))
    }

    pub fn grad(
        (xs, xl): (&CudaStorage, &Layout),
        (gs, gl): (&CudaStorage, &Layout),
    ) -> CResult<(CudaStorage, Shape)> {
        let s = PoolShape::new(xl.shape())?;
        if gl.shape().elem_count() != s.output_len() {
            candle_core::bail!(
                "max pool grad: gradient has {} values",
                gl.shape().elem_count()
            );
        }
        let dev = xs.device().clone();
        let (x, dy) = (
            cuda_f32_view(xs, xl, "max pool grad")?,
            cuda_f32_view(gs, gl, "max pool grad")?,
        );
        let len = s.input_len();
        // SAFETY: the kernel launched next writes all of it.
        let mut dx = unsafe { uninit::<f32>(&dev, len)? };
        if len > 0 {
            let name = "wna_max_pool2_grad";
            let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
            let mut args = func.builder();
            args.arg(&x);
            args.arg(&dy);
            args.arg(&mut dx);
            args.arg(&s);
            let grid = (PoolShape::blocks(len), 1, 1);
            // SAFETY: the arguments match `wna_max_pool2_grad` in cuda/pool.cu.
            unsafe { args.launch(config(grid, THREADS)) }.map_err(|e| fail(name, e))?;
        }
        Ok((CudaStorage::wrap_cuda_slice(dx, dev), xl.shape().clone()))
    }
}
