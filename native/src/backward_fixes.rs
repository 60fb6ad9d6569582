//! Gradient fixes for candle's own ops, wherever a layer runs them: under `WNA_CANDLE_OPS=1`, and
//! on devices other than the CPU and CUDA (CUDA's conv, training batch norm and max-pool have
//! their own kernels, `kernels/*/gpu.rs`).
//!
//! candle 0.9.1 gets two backward passes wrong on every backend:
//! - conv2d's weight gradient convolves with `grad.transpose(0, 1)`; its conv2d copies that
//!   non-contiguous kernel into a buffer and then reads the original storage instead, so the
//!   gradient is garbage whenever batch and output channels are both above one;
//! - max-pool's backward multiplies the gradient by the window average of the arg-max mask,
//!   which scales it by 1/4 for a 2x2 window.
//!
//! The forward passes are right and stay candle's. The ops here only replace the backward: each
//! is correct by construction on any device, and the kernel tests check them on the CPU against
//! wna's own kernels.

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{
    CpuStorage, CudaStorage, CustomOp1, CustomOp2, DType, Layout, Result as CResult, Shape, Tensor,
};

/// Zero-valued in the forward pass; its backward is the conv2d weight gradient. Added to
/// `conv2d(x, w.detach())`, it makes the weight gradient right and leaves the output unchanged.
#[derive(Debug, Clone, Copy)]
pub struct ConvWeightGradient {
    pub stride: usize,
    pub padding: usize,
    /// Output shape of the convolution.
    pub out: (usize, usize, usize, usize),
}

impl ConvWeightGradient {
    fn shape(&self) -> Shape {
        Shape::from(self.out)
    }
}

impl CustomOp2 for ConvWeightGradient {
    fn name(&self) -> &'static str {
        "wna-conv-weight-gradient"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let shape = self.shape();
        Ok((CpuStorage::F32(vec![0f32; shape.elem_count()]), shape))
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        let shape = self.shape();
        Ok((x.device().zeros_impl(&shape, DType::F32)?, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        // The batch becomes the contraction dimension: conv(x^T, grad^T) over the batch, with
        // the stride acting as dilation. Both operands are made contiguous, the case candle
        // computes right.
        let (_, _, kh, kw) = w.dims4()?;
        let gw = x
            .transpose(0, 1)?
            .contiguous()?
            .conv2d(
                &grad.transpose(0, 1)?.contiguous()?,
                self.padding,
                1,
                self.stride,
                1,
            )?
            .transpose(0, 1)?;
        let gw = gw.narrow(2, 0, kh)?.narrow(3, 0, kw)?.contiguous()?;
        Ok((None, Some(gw)))
    }
}

/// 2x2 max-pooling with stride 2: candle's forward, and a backward that routes each window's
/// gradient to its first maximum.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "wna-portable-max-pool2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let out = s.max_pool2d(l, (2, 2), (2, 2))?;
        Ok((out, pooled(l)?))
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> CResult<(CudaStorage, Shape)> {
        let out = s.max_pool2d(l, (2, 2), (2, 2))?;
        Ok((out, pooled(l)?))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let (b, c, h, w) = x.dims4()?;
        let (oh, ow) = (h / 2, w / 2);
        // Rows and columns past the last full window take no part (floor, as in the forward).
        let xs = x.narrow(2, 0, 2 * oh)?.narrow(3, 0, 2 * ow)?;
        let is_max = xs
            .eq(&res.upsample_nearest2d(2 * oh, 2 * ow)?)?
            .to_dtype(x.dtype())?
            .reshape((b, c, oh, 2, ow, 2))?;
        let at = |dy: usize, dx: usize| is_max.narrow(3, dy, 1)?.narrow(5, dx, 1);
        // Ties (common where a constant background meets a conv) go to the first maximum in
        // row-major window order, as in wna's CPU kernel and PyTorch.
        let not = |m: &Tensor| m.affine(-1.0, 1.0);
        let first00 = at(0, 0)?;
        let free = not(&first00)?;
        let first01 = (at(0, 1)? * &free)?;
        let free = (&free * not(&at(0, 1)?)?)?;
        let first10 = (at(1, 0)? * &free)?;
        let free = (&free * not(&at(1, 0)?)?)?;
        let first11 = (at(1, 1)? * &free)?;
        let route = Tensor::cat(
            &[
                Tensor::cat(&[first00, first01], 5)?,
                Tensor::cat(&[first10, first11], 5)?,
            ],
            3,
        )?;
        let g = grad
            .reshape((b, c, oh, 1, ow, 1))?
            .broadcast_mul(&route)?
            .reshape((b, c, 2 * oh, 2 * ow))?;
        let g = if (2 * oh, 2 * ow) == (h, w) {
            g
        } else {
            g.pad_with_zeros(2, 0, h - 2 * oh)?
                .pad_with_zeros(3, 0, w - 2 * ow)?
        };
        Ok(Some(g))
    }
}

fn pooled(l: &Layout) -> CResult<Shape> {
    let (b, c, h, w) = l.shape().dims4()?;
    Ok(Shape::from((b, c, h / 2, w / 2)))
}
