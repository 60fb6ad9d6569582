//! The CUDA twins of the convolution ops (`cuda/conv.cu`): forward, input gradient and weight
//! gradient as implicit GEMMs. The launch plan (tiles, grid, how the weight gradient's reduction
//! is split) is built here for every target, so that the emulated test (`tests/cuda_emulated_conv.rs`)
//! launches the kernels exactly as the GPU path does; the launches themselves exist with the
//! `cuda` feature only.

use super::ConvGeometry;
use candle_core::Result as CResult;

/// Threads per block of every convolution kernel.
pub const THREADS: u32 = 256;
/// Output tile of one block (rows x columns of the GEMM) and reduction indices per step: the
/// `CONV_TM`, `CONV_TN` and `CONV_TK` of the kernels.
const TILE_M: usize = 64;
const TILE_N: usize = 64;
const TILE_K: usize = 16;
/// Blocks the weight gradient's split reduction aims for: a few per SM of an H100 (132 SMs).
/// The split depends on the shapes alone, never on the GPU, so every GPU adds in the same order.
const WEIGHT_GRAD_BLOCKS: usize = 1024;
/// Fewest reduction indices (images x output positions) per block of the weight gradient.
const MIN_CHUNK: usize = 128;

/// The kernels' `ConvShape`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: u32,
    pub c_in: u32,
    pub height: u32,
    pub width: u32,
    pub c_out: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride: u32,
    pub padding: u32,
    pub out_h: u32,
    pub out_w: u32,
    /// Weight gradient: reduction indices per block (grid z).
    pub k_chunk: u32,
}

/// Which product a launch computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPass {
    Forward,
    GradInput,
    GradWeight,
}

impl ConvPass {
    pub fn kernel(self) -> &'static str {
        match self {
            Self::Forward => "wna_conv_forward",
            Self::GradInput => "wna_conv_grad_input",
            Self::GradWeight => "wna_conv_grad_weight",
        }
    }

    /// `(m, n, k)` of the pass's GEMM.
    fn gemm(self, g: &ConvGeometry) -> (usize, usize, usize) {
        let (khw, positions) = (g.kernel_h * g.kernel_w, g.positions());
        match self {
            Self::Forward => (g.c_out, g.batch * positions, g.taps()),
            Self::GradInput => (g.c_in, g.batch * g.height * g.width, g.c_out * khw),
            // One more column than taps: the bias gradient.
            Self::GradWeight => (g.c_out, g.taps() + 1, g.batch * positions),
        }
    }
}

/// One pass's launch: the shapes as the kernel takes them and its grid (column tiles, row
/// tiles, reduction chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvLaunch {
    pub pass: ConvPass,
    pub shape: ConvShape,
    pub grid: (u32, u32, u32),
}

impl ConvLaunch {
    pub fn new(pass: ConvPass, g: &ConvGeometry) -> CResult<Self> {
        let (m, n, k) = pass.gemm(g);
        let (m_tiles, n_tiles) = (m.div_ceil(TILE_M), n.div_ceil(TILE_N));
        let chunk = match pass {
            ConvPass::GradWeight => {
                let chunks = WEIGHT_GRAD_BLOCKS.div_ceil(m_tiles * n_tiles).max(1);
                k.div_ceil(chunks).next_multiple_of(TILE_K).max(MIN_CHUNK)
            }
            _ => k.max(1),
        };
        let chunks = k.div_ceil(chunk).max(1);
        let u32_of = |v: usize, what: &str| {
            u32::try_from(v).map_err(|_| {
                candle_core::Error::Msg(format!(
                    "conv2d on CUDA: {what} ({v}) is beyond the kernels' 32-bit indices; \
                     use smaller batches"
                ))
            })
        };
        // Row tiles and chunks are grid y and z, at most 65,535 each.
        if m_tiles > 65_535 || chunks > 65_535 {
            candle_core::bail!("conv2d on CUDA: {m} channels or {k} reduction indices are too many")
        }
        let shape = ConvShape {
            batch: u32_of(g.batch, "the batch")?,
            c_in: u32_of(g.c_in, "input channels")?,
            height: u32_of(g.height, "the height")?,
            width: u32_of(g.width, "the width")?,
            c_out: u32_of(g.c_out, "output channels")?,
            kernel_h: u32_of(g.kernel_h, "the kernel height")?,
            kernel_w: u32_of(g.kernel_w, "the kernel width")?,
            stride: u32_of(g.stride, "the stride")?,
            padding: u32_of(g.padding, "the padding")?,
            out_h: u32_of(g.out_h(), "the output height")?,
            out_w: u32_of(g.out_w(), "the output width")?,
            k_chunk: u32_of(chunk, "the reduction chunk")?,
        };
        // The kernels index images x positions and channels x taps in 32 bits.
        u32_of(
            g.batch * g.positions().max(g.height * g.width),
            "images x positions",
        )?;
        u32_of(g.c_out * (g.taps() + 1), "the kernel's size")?;
        Ok(Self {
            pass,
            shape,
            grid: (
                u32_of(n_tiles, "column tiles")?,
                m_tiles as u32,
                chunks as u32,
            ),
        })
    }

    /// Whether the launch has any output to write (an empty batch has none, except the weight
    /// gradient, which is then zero).
    pub fn has_work(&self) -> bool {
        self.grid.0 > 0 && self.grid.1 > 0
    }

    /// Floats of the weight gradient's partial sums: `[chunks][c_out][taps + 1]`.
    pub fn partials_len(&self) -> usize {
        self.grid.2 as usize * self.gradient_len()
    }

    /// Floats of the weight and bias gradients: `c_out * (taps + 1)`.
    pub fn gradient_len(&self) -> usize {
        let s = &self.shape;
        s.c_out as usize * (s.c_in * s.kernel_h * s.kernel_w + 1) as usize
    }

    /// Blocks of `wna_conv_grad_weight_reduce`: one thread per gradient element.
    pub fn reduce_blocks(&self) -> u32 {
        (self.gradient_len().div_ceil(THREADS as usize)).max(1) as u32
    }
}

#[cfg(feature = "cuda")]
pub use launch::{forward, grad_input, grad_weight};

#[cfg(feature = "cuda")]
mod launch {
    use super::{ConvLaunch, ConvPass, ConvShape, THREADS};
    use crate::kernels::cuda_launch::{self, fail, uninit};
    use crate::kernels::{cuda_f32_view, ConvGeometry};
    use candle_core::backend::BackendStorage;
    use candle_core::{CudaStorage, Layout, Result as CResult, Shape};
    use cudarc::driver::{LaunchConfig, PushKernelArg};

    const MODULE: &str = "wna_conv";
    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/conv.ptx"));

    // SAFETY: `ConvShape` is `#[repr(C)]` plain u32s, the layout of the kernels' `ConvShape`.
    unsafe impl cudarc::driver::DeviceRepr for ConvShape {}

    fn config(grid: (u32, u32, u32)) -> LaunchConfig {
        cuda_launch::config(grid, THREADS)
    }

    pub fn forward(
        g: &ConvGeometry,
        (xs, xl): (&CudaStorage, &Layout),
        (ws, wl): (&CudaStorage, &Layout),
        (bs, bl): (&CudaStorage, &Layout),
    ) -> CResult<(CudaStorage, Shape)> {
        if bl.shape().elem_count() != g.c_out {
            candle_core::bail!(
                "conv2d: {} biases for {} output channels",
                bl.shape().elem_count(),
                g.c_out
            )
        }
        let plan = ConvLaunch::new(ConvPass::Forward, g)?;
        let dev = xs.device().clone();
        let (x, w, b) = (
            cuda_f32_view(xs, xl, "conv2d")?,
            cuda_f32_view(ws, wl, "conv2d")?,
            cuda_f32_view(bs, bl, "conv2d")?,
        );
        // SAFETY: the kernel launched next writes all of it.
        let mut y = unsafe { uninit::<f32>(&dev, g.batch * g.out_len())? };
        if plan.has_work() {
            let name = plan.pass.kernel();
            let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
            let mut args = func.builder();
            args.arg(&x);
            args.arg(&w);
            args.arg(&b);
            args.arg(&mut y);
            args.arg(&plan.shape);
            // SAFETY: the arguments match `wna_conv_forward` in cuda/conv.cu.
            unsafe { args.launch(config(plan.grid)) }.map_err(|e| fail(name, e))?;
        }
        Ok((CudaStorage::wrap_cuda_slice(y, dev), g.out_shape()))
    }

    pub fn grad_input(
        g: &ConvGeometry,
        (gs, gl): (&CudaStorage, &Layout),
        (ws, wl): (&CudaStorage, &Layout),
    ) -> CResult<(CudaStorage, Shape)> {
        let plan = ConvLaunch::new(ConvPass::GradInput, g)?;
        let dev = gs.device().clone();
        let (dy, w) = (
            cuda_f32_view(gs, gl, "conv2d grad")?,
            cuda_f32_view(ws, wl, "conv2d grad")?,
        );
        // SAFETY: the kernel launched next writes all of it.
        let mut dx = unsafe { uninit::<f32>(&dev, g.batch * g.image_len())? };
        if plan.has_work() {
            let name = plan.pass.kernel();
            let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
            let mut args = func.builder();
            args.arg(&dy);
            args.arg(&w);
            args.arg(&mut dx);
            args.arg(&plan.shape);
            // SAFETY: the arguments match `wna_conv_grad_input` in cuda/conv.cu.
            unsafe { args.launch(config(plan.grid)) }.map_err(|e| fail(name, e))?;
        }
        let shape = Shape::from((g.batch, g.c_in, g.height, g.width));
        Ok((CudaStorage::wrap_cuda_slice(dx, dev), shape))
    }

    /// The flat `[c_out * taps + c_out]` weight and bias gradients, as the CPU op returns them.
    pub fn grad_weight(
        g: &ConvGeometry,
        (xs, xl): (&CudaStorage, &Layout),
        (gs, gl): (&CudaStorage, &Layout),
    ) -> CResult<(CudaStorage, Shape)> {
        let plan = ConvLaunch::new(ConvPass::GradWeight, g)?;
        let dev = xs.device().clone();
        let (x, dy) = (
            cuda_f32_view(xs, xl, "conv2d grad")?,
            cuda_f32_view(gs, gl, "conv2d grad")?,
        );
        // SAFETY: the kernel launched next writes all of it.
        let mut partials = unsafe { uninit::<f32>(&dev, plan.partials_len())? };
        let name = plan.pass.kernel();
        let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        let mut args = func.builder();
        args.arg(&x);
        args.arg(&dy);
        args.arg(&mut partials);
        args.arg(&plan.shape);
        // SAFETY: the arguments match `wna_conv_grad_weight` in cuda/conv.cu.
        unsafe { args.launch(config(plan.grid)) }.map_err(|e| fail(name, e))?;

        // SAFETY: the kernel launched next writes all of it.
        let mut out = unsafe { uninit::<f32>(&dev, plan.gradient_len())? };
        let reduce = "wna_conv_grad_weight_reduce";
        let func = dev.get_or_load_custom_func(reduce, MODULE, PTX)?;
        let chunks = plan.grid.2;
        let mut args = func.builder();
        args.arg(&partials);
        args.arg(&chunks);
        args.arg(&plan.shape);
        args.arg(&mut out);
        // SAFETY: the arguments match `wna_conv_grad_weight_reduce` in cuda/conv.cu.
        unsafe { args.launch(config((plan.reduce_blocks(), 1, 1))) }
            .map_err(|e| fail(reduce, e))?;
        let len = plan.gradient_len();
        Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from(len)))
    }
}
