//! CPU kernels for the layers our small nets spend their time in, as candle `CustomOp`s.
//!
//! candle 0.9's CPU conv runs im2col and one big gemm and then copies the result into NCHW, its
//! batch norm is a chain of single-threaded broadcast ops, and its max-pool backward goes
//! through upsampling and masks. For 28x28 inputs with 1 to 128 channels that made training
//! `smaller` about 15x slower than PyTorch on the same machine. These ops work per image in
//! parallel (rayon), keep each image's im2col buffer in cache, hand the products to `gemm` (the
//! SIMD matrix kernel candle itself uses), and fuse bias, batch norm and ReLU into single passes.
//! Each forward op has a backward (`bwd`) built from the no-grad ops further down, so training
//! and input gradients (FGSM) both use them. Non-CPU devices never reach this file: the layer
//! wrappers in `layers.rs` send them to candle's own ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

type CResult<T> = candle_core::Result<T>;

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> CResult<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(d) => d,
        _ => candle_core::bail!("{what}: wna's CPU kernels take f32 tensors"),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: wna's CPU kernels take contiguous tensors"),
    }
}

/// `dst (m x n) = [dst +] lhs (m x k) . rhs (k x n)`; every operand given by row and column
/// strides so transposes cost nothing. Single-threaded: callers parallelise over images.
#[allow(clippy::too_many_arguments)]
fn matmul(
    shape: (usize, usize, usize),
    dst: &mut [f32],
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    let serial = gemm::Parallelism::None;
    strided_gemm(
        shape,
        dst,
        dst_strides,
        accumulate,
        lhs,
        lhs_strides,
        rhs,
        rhs_strides,
        serial,
    )
}

/// [`matmul`] with a choice of threading: one big product (a linear layer) uses every core.
#[allow(clippy::too_many_arguments)]
fn strided_gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    parallelism: gemm::Parallelism,
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(
        dst.len() >= last(m, n, dst_rs, dst_cs),
        "matmul: dst too short"
    );
    assert!(
        lhs.len() >= last(m, k, lhs_rs, lhs_cs),
        "matmul: lhs too short"
    );
    assert!(
        rhs.len() >= last(k, n, rhs_rs, rhs_cs),
        "matmul: rhs too short"
    );
    // SAFETY: the asserts above keep every strided access inside the three slices, and `dst`
    // is borrowed mutably so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

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

/// Adds per-task partial sums in task order: the tasks are cut by shape alone, so a result never
/// depends on the thread count or on scheduling, and the same seed trains the same weights.
fn sum_in_order<T: Copy + std::ops::AddAssign>(partials: Vec<Vec<T>>) -> Vec<T> {
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_default();
    for p in parts {
        total.iter_mut().zip(&p).for_each(|(t, v)| *t += *v);
    }
    total
}

/// Images per rayon task: enough work per task to amortise scheduling, small enough to balance.
fn images_per_task(per_image_flops: usize) -> usize {
    (200_000 / per_image_flops.max(1)).clamp(1, 64)
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

/// Batch norm over `[n, c, ...]` with per-channel `mean` and `invstd` fixed by the caller (batch
/// statistics in training, running ones in inference), scale `gamma` and shift `beta`, optionally
/// followed by ReLU, all in one pass.
pub struct BatchNorm {
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
    /// Whether `mean`/`invstd` came from this batch, so the backward must differentiate them.
    pub batch_statistics: bool,
    pub relu: bool,
}

fn channel_layout(shape: &Shape) -> CResult<(usize, usize, usize)> {
    let dims = shape.dims();
    if dims.len() < 2 {
        candle_core::bail!("batch norm: input needs at least 2 dimensions, got {shape:?}");
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

/// Per-channel mean and biased variance of `[n, c, ...]`, summed in f64 (one pass).
pub fn channel_statistics(x: &[f32], channels: usize, spatial: usize) -> (Vec<f32>, Vec<f32>) {
    let per_image = channels * spatial;
    let zero = || vec![0f64; 2 * channels];
    let sums = sum_in_order(
        x.par_chunks(per_image * images_per_task(per_image))
            .map(|images| {
                let mut acc = zero();
                for image in images.chunks(per_image) {
                    for (c, plane) in image.chunks(spatial).enumerate() {
                        let (s, s2) = plane
                            .iter()
                            .fold((0f32, 0f32), |(s, s2), &v| (s + v, s2 + v * v));
                        acc[2 * c] += s as f64;
                        acc[2 * c + 1] += s2 as f64;
                    }
                }
                acc
            })
            .collect::<Vec<_>>(),
    );
    let count = (x.len() / channels.max(1)).max(1) as f64;
    let mean: Vec<f64> = (0..channels).map(|c| sums[2 * c] / count).collect();
    let var = (0..channels)
        .map(|c| (sums[2 * c + 1] / count - mean[c] * mean[c]).max(0.0) as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), var)
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "wna-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (_, c, spatial) = channel_layout(xl.shape())?;
        let x = f32_slice(xs, xl, "batch norm")?;
        let (gamma, beta) = (
            f32_slice(gs, gl, "batch norm")?,
            f32_slice(bs, bl, "batch norm")?,
        );
        if gamma.len() != c || beta.len() != c || self.mean.len() != c || self.invstd.len() != c {
            candle_core::bail!("batch norm: parameters do not match {c} channels");
        }
        let scale: Vec<f32> = (0..c).map(|i| gamma[i] * self.invstd[i]).collect();
        let shift: Vec<f32> = (0..c).map(|i| beta[i] - self.mean[i] * scale[i]).collect();
        let mut out = vec![0f32; x.len()];
        let per_task = c * spatial * images_per_task(c * spatial);
        out.par_chunks_mut(per_task)
            .zip(x.par_chunks(per_task))
            .for_each(|(o, x)| {
                for (i, (o, x)) in o.chunks_mut(spatial).zip(x.chunks(spatial)).enumerate() {
                    let (a, b) = (scale[i % c], shift[i % c]);
                    if self.relu {
                        o.iter_mut()
                            .zip(x)
                            .for_each(|(o, &x)| *o = (a * x + b).max(0.0));
                    } else {
                        o.iter_mut().zip(x).for_each(|(o, &x)| *o = a * x + b);
                    }
                }
            });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let op = BatchNormGrad {
            mean: self.mean.clone(),
            invstd: self.invstd.clone(),
            gamma: gamma.to_vec1::<f32>()?,
            batch_statistics: self.batch_statistics,
            relu: self.relu,
        };
        let all = x.apply_op3_no_bwd(res, &grad.contiguous()?, &op)?;
        let (len, c) = (x.elem_count(), op.gamma.len());
        let grad_x = all.narrow(0, 0, len)?.reshape(x.shape())?;
        let grad_gamma = all.narrow(0, len, c)?;
        let grad_beta = all.narrow(0, len + c, c)?;
        Ok((Some(grad_x), Some(grad_gamma), Some(grad_beta)))
    }
}

/// Gradients of [`BatchNorm`] from (x, y, dy): a flat `[x.len() + 2c]` vector of dx, dgamma, dbeta.
struct BatchNormGrad {
    mean: Vec<f32>,
    invstd: Vec<f32>,
    gamma: Vec<f32>,
    batch_statistics: bool,
    relu: bool,
}

impl CustomOp3 for BatchNormGrad {
    fn name(&self) -> &'static str {
        "wna-batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (_, c, spatial) = channel_layout(xl.shape())?;
        let x = f32_slice(xs, xl, "batch norm grad")?;
        let y = f32_slice(ys, yl, "batch norm grad")?;
        let dy = f32_slice(gs, gl, "batch norm grad")?;
        let per_image = c * spatial;
        let per_task = per_image * images_per_task(per_image);
        let relu = self.relu;
        // The gradient reaching the affine output: ReLU passes it where the output is positive.
        let dz = |y: f32, dy: f32| if !relu || y > 0.0 { dy } else { 0.0 };
        let zero = || vec![0f64; 2 * c];
        let sums = sum_in_order(
            x.par_chunks(per_task)
                .zip(y.par_chunks(per_task))
                .zip(dy.par_chunks(per_task))
                .map(|((x, y), dy)| {
                    let mut acc = zero();
                    for (i, ((x, y), dy)) in x
                        .chunks(spatial)
                        .zip(y.chunks(spatial))
                        .zip(dy.chunks(spatial))
                        .enumerate()
                    {
                        let ch = i % c;
                        let (m, s) = (self.mean[ch], self.invstd[ch]);
                        let (mut sum, mut sum_xhat) = (0f32, 0f32);
                        for ((&x, &y), &dy) in x.iter().zip(y).zip(dy) {
                            let d = dz(y, dy);
                            sum += d;
                            sum_xhat += d * (x - m) * s;
                        }
                        acc[ch] += sum as f64;
                        acc[c + ch] += sum_xhat as f64;
                    }
                    acc
                })
                .collect::<Vec<_>>(),
        );
        let count = (x.len() / c.max(1)) as f32;
        let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..c)
            .map(|ch| (sums[ch] as f32, sums[c + ch] as f32))
            .unzip();
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, params) = out.split_at_mut(x.len());
        dx.par_chunks_mut(per_task)
            .zip(x.par_chunks(per_task))
            .zip(y.par_chunks(per_task).zip(dy.par_chunks(per_task)))
            .for_each(|((dx, x), (y, dy))| {
                for (i, (((dx, x), y), dy)) in dx
                    .chunks_mut(spatial)
                    .zip(x.chunks(spatial))
                    .zip(y.chunks(spatial))
                    .zip(dy.chunks(spatial))
                    .enumerate()
                {
                    let ch = i % c;
                    let (m, s, g) = (self.mean[ch], self.invstd[ch], self.gamma[ch]);
                    if self.batch_statistics {
                        // dx = g*s/M * (M*dz - sum(dz) - xhat*sum(dz*xhat))
                        let (mean_dz, mean_dz_xhat) = (dbeta[ch] / count, dgamma[ch] / count);
                        for (((dx, &x), &y), &dy) in dx.iter_mut().zip(x).zip(y).zip(dy) {
                            let xhat = (x - m) * s;
                            *dx = g * s * (dz(y, dy) - mean_dz - xhat * mean_dz_xhat);
                        }
                    } else {
                        for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
                            *dx = g * s * dz(y, dy);
                        }
                    }
                }
            });
        params[..c].copy_from_slice(&dgamma);
        params[c..].copy_from_slice(&dbeta);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// 2x2 max-pooling with stride 2 (odd trailing rows and columns dropped, as candle and PyTorch).
pub struct MaxPool2;

fn pool_dims(shape: &Shape) -> CResult<(usize, usize, usize)> {
    let (n, c, h, w) = shape.dims4()?;
    Ok((n * c, h, w))
}

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "wna-max-pool2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (planes, h, w) = pool_dims(l.shape())?;
        let x = f32_slice(s, l, "max pool")?;
        let (oh, ow) = (h / 2, w / 2);
        let mut out = vec![0f32; planes * oh * ow];
        let per_task = 64;
        out.par_chunks_mut(oh * ow * per_task)
            .zip(x.par_chunks(h * w * per_task))
            .for_each(|(o, x)| {
                for (o, x) in o.chunks_mut(oh * ow).zip(x.chunks(h * w)) {
                    for oy in 0..oh {
                        let (r0, r1) = (&x[2 * oy * w..][..w], &x[(2 * oy + 1) * w..][..w]);
                        for ox in 0..ow {
                            let i = 2 * ox;
                            o[oy * ow + ox] = r0[i].max(r0[i + 1]).max(r1[i].max(r1[i + 1]));
                        }
                    }
                }
            });
        let (n, c, _, _) = l.shape().dims4()?;
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        Ok(Some(
            x.apply_op2_no_bwd(&grad.contiguous()?, &MaxPool2Grad)?,
        ))
    }
}

/// Routes each pooled gradient to the first maximum of its window (PyTorch's choice on ties).
struct MaxPool2Grad;

impl CustomOp2 for MaxPool2Grad {
    fn name(&self) -> &'static str {
        "wna-max-pool2-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (planes, h, w) = pool_dims(xl.shape())?;
        let x = f32_slice(xs, xl, "max pool grad")?;
        let g = f32_slice(gs, gl, "max pool grad")?;
        let (oh, ow) = (h / 2, w / 2);
        if g.len() != planes * oh * ow {
            candle_core::bail!("max pool grad: gradient has {} values", g.len());
        }
        let mut dx = vec![0f32; x.len()];
        let per_task = 64;
        dx.par_chunks_mut(h * w * per_task)
            .zip(x.par_chunks(h * w * per_task))
            .zip(g.par_chunks(oh * ow * per_task))
            .for_each(|((dx, x), g)| {
                for ((dx, x), g) in dx
                    .chunks_mut(h * w)
                    .zip(x.chunks(h * w))
                    .zip(g.chunks(oh * ow))
                {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let window = [
                                2 * oy * w + 2 * ox,
                                2 * oy * w + 2 * ox + 1,
                                (2 * oy + 1) * w + 2 * ox,
                                (2 * oy + 1) * w + 2 * ox + 1,
                            ];
                            let best = window.into_iter().fold(window[0], |best, i| {
                                if x[i] > x[best] {
                                    i
                                } else {
                                    best
                                }
                            });
                            dx[best] += g[oy * ow + ox];
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// A fully connected layer `x . w^T + b` with x `[n, in]`, w `[out, in]` (candle-nn's layout),
/// b `[out]`. candle's own linear returns the weight gradient as a transposed view, which every
/// optimiser step then had to copy element by element; this one writes it in place.
pub struct Linear;

fn linear_dims(x: &Layout, w: &Layout) -> CResult<(usize, usize, usize)> {
    let (n, fan_in) = x.shape().dims2()?;
    let (out, fan_in2) = w.shape().dims2()?;
    if fan_in != fan_in2 {
        candle_core::bail!("linear: input has {fan_in} features, weight expects {fan_in2}");
    }
    Ok((n, fan_in, out))
}

const ALL_CORES: gemm::Parallelism = gemm::Parallelism::Rayon(0);

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "wna-linear"
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
        let (n, fan_in, out) = linear_dims(xl, wl)?;
        let (x, w, b) = (
            f32_slice(xs, xl, "linear")?,
            f32_slice(ws, wl, "linear")?,
            f32_slice(bs, bl, "linear")?,
        );
        if b.len() != out {
            candle_core::bail!("linear: bias has {} values for {out} outputs", b.len());
        }
        let mut y = vec![0f32; n * out];
        y.chunks_mut(out).for_each(|row| row.copy_from_slice(b));
        let shape = (n, out, fan_in);
        strided_gemm(
            shape,
            &mut y,
            (out, 1),
            true,
            x,
            (fan_in, 1),
            w,
            (1, fan_in),
            ALL_CORES,
        );
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let op = LinearGrad {
            input_gradient: x.track_op(),
        };
        let all = x.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let (n, fan_in) = x.dims2()?;
        let out = w.dim(0)?;
        let x_len = if op.input_gradient { n * fan_in } else { 0 };
        let grad_x = match op.input_gradient {
            true => Some(all.narrow(0, 0, x_len)?.reshape((n, fan_in))?),
            false => None,
        };
        let grad_w = all.narrow(0, x_len, out * fan_in)?.reshape((out, fan_in))?;
        let grad_b = all.narrow(0, x_len + out * fan_in, out)?;
        Ok((grad_x, Some(grad_w), Some(grad_b)))
    }
}

/// Gradients of [`Linear`] from (x, w, dy): a flat `[dx?, dw, db]` vector.
struct LinearGrad {
    input_gradient: bool,
}

impl CustomOp3 for LinearGrad {
    fn name(&self) -> &'static str {
        "wna-linear-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (n, fan_in, out) = linear_dims(xl, wl)?;
        let (x, w, dy) = (
            f32_slice(xs, xl, "linear grad")?,
            f32_slice(ws, wl, "linear grad")?,
            f32_slice(gs, gl, "linear grad")?,
        );
        let x_len = if self.input_gradient { n * fan_in } else { 0 };
        let mut all = vec![0f32; x_len + out * fan_in + out];
        let (dx, rest) = all.split_at_mut(x_len);
        let (dw, db) = rest.split_at_mut(out * fan_in);
        if self.input_gradient {
            // dx = dy . w
            let shape = (n, fan_in, out);
            strided_gemm(
                shape,
                dx,
                (fan_in, 1),
                false,
                dy,
                (out, 1),
                w,
                (fan_in, 1),
                ALL_CORES,
            );
        }
        // dw = dy^T . x
        let shape = (out, fan_in, n);
        strided_gemm(
            shape,
            dw,
            (fan_in, 1),
            false,
            dy,
            (1, out),
            x,
            (fan_in, 1),
            ALL_CORES,
        );
        for row in dy.chunks(out) {
            db.iter_mut().zip(row).for_each(|(s, &g)| *s += g);
        }
        let len = all.len();
        Ok((CpuStorage::F32(all), Shape::from(len)))
    }
}
