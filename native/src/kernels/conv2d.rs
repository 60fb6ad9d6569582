//! 2-D convolution with its input and weight gradients: per-image im2col into `gemm`.

use super::{f32_slice, images_per_task, matmul, sum_in_order, CResult};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Shapes of one 2-D convolution (square stride and padding, no dilation or groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub height: usize,
    pub width: usize,
    pub c_out: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeometry {
    pub fn out_h(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel_h) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel_w) / self.stride + 1
    }
    fn positions(&self) -> usize {
        self.out_h() * self.out_w()
    }
    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    fn taps(&self) -> usize {
        self.c_in * self.kernel_h * self.kernel_w
    }
    fn image_len(&self) -> usize {
        self.c_in * self.height * self.width
    }
    fn out_len(&self) -> usize {
        self.c_out * self.positions()
    }

    /// Input column of output column `ox` under kernel column `kx`, if inside the image.
    fn source_x(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.stride + kx)
            .checked_sub(self.padding)
            .filter(|&ix| ix < self.width)
    }
    fn source_y(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&iy| iy < self.height)
    }
    /// The range of output columns whose input column under `kx` is inside the image.
    fn valid_ox(&self, kx: usize) -> std::ops::Range<usize> {
        let ow = self.out_w();
        let first = (0..ow)
            .find(|&ox| self.source_x(ox, kx).is_some())
            .unwrap_or(ow);
        let end = (first..ow)
            .find(|&ox| self.source_x(ox, kx).is_none())
            .unwrap_or(ow);
        first..end
    }

    /// One image's patches as a `[taps, positions]` matrix; padding reads as zero.
    fn im2col(&self, image: &[f32], col: &mut [f32]) {
        let (oh, ow, p) = (self.out_h(), self.out_w(), self.positions());
        for ci in 0..self.c_in {
            let plane = &image[ci * self.height * self.width..][..self.height * self.width];
            for ky in 0..self.kernel_h {
                for kx in 0..self.kernel_w {
                    let row = &mut col[((ci * self.kernel_h + ky) * self.kernel_w + kx) * p..][..p];
                    let valid = self.valid_ox(kx);
                    for oy in 0..oh {
                        let out = &mut row[oy * ow..][..ow];
                        let Some(iy) = self.source_y(oy, ky) else {
                            out.fill(0.0);
                            continue;
                        };
                        let src = &plane[iy * self.width..][..self.width];
                        out[..valid.start].fill(0.0);
                        out[valid.end..].fill(0.0);
                        if self.stride == 1 {
                            let ix0 = valid.start + kx - self.padding;
                            out[valid.clone()].copy_from_slice(&src[ix0..ix0 + valid.len()]);
                        } else {
                            for ox in valid.clone() {
                                out[ox] = src[ox * self.stride + kx - self.padding];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds a `[taps, positions]` matrix of patch gradients back onto one image's gradient.
    fn col2im(&self, col: &[f32], image: &mut [f32]) {
        let (oh, ow, p) = (self.out_h(), self.out_w(), self.positions());
        image.fill(0.0);
        for ci in 0..self.c_in {
            let plane = &mut image[ci * self.height * self.width..][..self.height * self.width];
            for ky in 0..self.kernel_h {
                for kx in 0..self.kernel_w {
                    let row = &col[((ci * self.kernel_h + ky) * self.kernel_w + kx) * p..][..p];
                    let valid = self.valid_ox(kx);
                    for oy in 0..oh {
                        let Some(iy) = self.source_y(oy, ky) else {
                            continue;
                        };
                        let dst = &mut plane[iy * self.width..][..self.width];
                        for ox in valid.clone() {
                            dst[ox * self.stride + kx - self.padding] += row[oy * ow + ox];
                        }
                    }
                }
            }
        }
    }
}

/// `conv2d(x, w) + b` with x `[n, c, h, w]`, w `[k, c, kh, kw]`, b `[k]`.
pub struct Conv2d {
    pub stride: usize,
    pub padding: usize,
}

impl Conv2d {
    fn geometry(&self, x: &Layout, w: &Layout) -> CResult<ConvGeometry> {
        let (n, c, h, wd) = x.shape().dims4()?;
        let (k, c2, kh, kw) = w.shape().dims4()?;
        if c != c2 {
            candle_core::bail!("conv2d: input has {c} channels, kernel expects {c2}");
        }
        if h + 2 * self.padding < kh || wd + 2 * self.padding < kw || self.stride == 0 {
            candle_core::bail!("conv2d: kernel {kh}x{kw} does not fit a {h}x{wd} input");
        }
        Ok(ConvGeometry {
            batch: n,
            c_in: c,
            height: h,
            width: wd,
            c_out: k,
            kernel_h: kh,
            kernel_w: kw,
            stride: self.stride,
            padding: self.padding,
        })
    }
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "wna-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let g = self.geometry(xl, wl)?;
        let (x, w, b) = (
            f32_slice(xs, xl, "conv2d")?,
            f32_slice(ws, wl, "conv2d")?,
            f32_slice(bs, bl, "conv2d")?,
        );
        if b.len() != g.c_out {
            candle_core::bail!(
                "conv2d: bias has {} values for {} channels",
                b.len(),
                g.c_out
            );
        }
        let (p, taps) = (g.positions(), g.taps());
        let mut out = vec![0f32; g.batch * g.out_len()];
        let per_task = images_per_task(g.out_len() * taps);
        out.par_chunks_mut(g.out_len() * per_task)
            .zip(x.par_chunks(g.image_len() * per_task))
            .for_each(|(outs, images)| {
                let mut col = vec![0f32; taps * p];
                for (o, image) in outs
                    .chunks_mut(g.out_len())
                    .zip(images.chunks(g.image_len()))
                {
                    g.im2col(image, &mut col);
                    for (row, &bias) in o.chunks_mut(p).zip(b) {
                        row.fill(bias);
                    }
                    matmul(
                        (g.c_out, p, taps),
                        o,
                        (p, 1),
                        true,
                        w,
                        (taps, 1),
                        &col,
                        (p, 1),
                    );
                }
            });
        let shape = Shape::from((g.batch, g.c_out, g.out_h(), g.out_w()));
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let g = self.geometry(x.layout(), w.layout())?;
        let grad_x = if x.track_op() {
            Some(grad.apply_op2_no_bwd(w, &Conv2dGradInput(g))?)
        } else {
            None
        };
        let both = x.apply_op2_no_bwd(&grad, &Conv2dGradWeight(g))?;
        let kernel_len = g.c_out * g.taps();
        let grad_w = both.narrow(0, 0, kernel_len)?.reshape(w.shape())?;
        let grad_b = both.narrow(0, kernel_len, g.c_out)?;
        Ok((grad_x, Some(grad_w), Some(grad_b)))
    }
}

/// `d loss / d x` of a convolution, from the output gradient and the kernel.
struct Conv2dGradInput(ConvGeometry);

impl CustomOp2 for Conv2dGradInput {
    fn name(&self) -> &'static str {
        "wna-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let g = self.0;
        let (grad, w) = (
            f32_slice(gs, gl, "conv2d grad")?,
            f32_slice(ws, wl, "conv2d grad")?,
        );
        let (p, taps) = (g.positions(), g.taps());
        let mut out = vec![0f32; g.batch * g.image_len()];
        let per_task = images_per_task(g.out_len() * taps);
        out.par_chunks_mut(g.image_len() * per_task)
            .zip(grad.par_chunks(g.out_len() * per_task))
            .for_each(|(images, grads)| {
                let mut col = vec![0f32; taps * p];
                for (image, go) in images
                    .chunks_mut(g.image_len())
                    .zip(grads.chunks(g.out_len()))
                {
                    // col = w^T . grad: w is [k, taps] row-major, read transposed via strides.
                    matmul(
                        (taps, p, g.c_out),
                        &mut col,
                        (p, 1),
                        false,
                        w,
                        (1, taps),
                        go,
                        (p, 1),
                    );
                    g.col2im(&col, image);
                }
            });
        let shape = Shape::from((g.batch, g.c_in, g.height, g.width));
        Ok((CpuStorage::F32(out), shape))
    }
}

/// Kernel and bias gradients of a convolution, returned as one flat `[k*taps + k]` vector.
struct Conv2dGradWeight(ConvGeometry);

impl CustomOp2 for Conv2dGradWeight {
    fn name(&self) -> &'static str {
        "wna-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let g = self.0;
        let (x, grad) = (
            f32_slice(xs, xl, "conv2d grad")?,
            f32_slice(gs, gl, "conv2d grad")?,
        );
        let (p, taps, k) = (g.positions(), g.taps(), g.c_out);
        let per_task = images_per_task(g.out_len() * taps);
        let zero = || vec![0f32; k * taps + k];
        let total = sum_in_order(
            x.par_chunks(g.image_len() * per_task)
                .zip(grad.par_chunks(g.out_len() * per_task))
                .map(|(images, grads)| {
                    let mut acc = zero();
                    let mut col = vec![0f32; taps * p];
                    for (image, go) in images.chunks(g.image_len()).zip(grads.chunks(g.out_len())) {
                        g.im2col(image, &mut col);
                        let (acc_w, acc_b) = acc.split_at_mut(k * taps);
                        // acc_w += grad (k x p) . col^T (p x taps)
                        matmul(
                            (k, taps, p),
                            acc_w,
                            (taps, 1),
                            true,
                            go,
                            (p, 1),
                            &col,
                            (1, p),
                        );
                        for (sum, row) in acc_b.iter_mut().zip(go.chunks(p)) {
                            *sum += row.iter().sum::<f32>();
                        }
                    }
                    acc
                })
                .collect::<Vec<_>>(),
        );
        let len = total.len();
        Ok((CpuStorage::F32(total), Shape::from(len)))
    }
}
