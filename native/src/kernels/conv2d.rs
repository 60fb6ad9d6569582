//! 2-D convolution with its input and weight gradients: im2col into `gemm`, a few images per
//! product. Grouping matters for `larger`'s 7x7 and 14x14 planes: one image gives the matrix
//! kernel only 49 or 196 columns and re-packs the whole kernel for them; ten images side by side
//! made `larger`'s inference about 1.4x and its training about 1.7x faster (2026-12-02).

use super::{f32_slice, images_per_task, matmul, sum_in_order, with_scratch, CResult};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

pub mod gpu;
mod winograd;

/// Columns (images x output positions) a grouped product aims for.
const GROUP_COLUMNS: usize = 512;

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
    /// Whether the forward runs through Winograd's F(4x4, 3x3) rather than im2col.
    pub fn winograd(&self) -> bool {
        winograd::applies(self)
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
    fn out_shape(&self) -> Shape {
        Shape::from((self.batch, self.c_out, self.out_h(), self.out_w()))
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

    /// [`Self::valid_ox`] for every kernel column: made once per op, since it depends on the
    /// shapes alone, and passed to every image's [`Self::im2col`] and [`Self::col2im`].
    fn valid_columns(&self) -> Vec<std::ops::Range<usize>> {
        (0..self.kernel_w).map(|kx| self.valid_ox(kx)).collect()
    }

    /// One image's patches as the columns of a `[taps, positions]` block whose rows lie
    /// `row_stride` apart (`positions` for one image, more when images share the matrix);
    /// padding reads as zero. `valid` is [`Self::valid_columns`].
    fn im2col(
        &self,
        image: &[f32],
        col: &mut [f32],
        row_stride: usize,
        valid: &[std::ops::Range<usize>],
    ) {
        let (oh, ow, p) = (self.out_h(), self.out_w(), self.positions());
        if self.stride == 1 && (oh, ow) == (self.height, self.width) {
            return self.im2col_same(image, col, row_stride, valid);
        }
        if self.stride == 1 {
            return self.im2col_padded(image, col, row_stride);
        }
        for ci in 0..self.c_in {
            let plane = &image[ci * self.height * self.width..][..self.height * self.width];
            for ky in 0..self.kernel_h {
                for (kx, valid) in valid.iter().enumerate() {
                    let tap = (ci * self.kernel_h + ky) * self.kernel_w + kx;
                    let row = &mut col[tap * row_stride..][..p];
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

    /// [`Self::im2col`] for any other stride-1 convolution: each input plane is first copied into
    /// a zero-bordered plane, so every patch row is one straight copy of `out_w` values, with no
    /// zero fills around it, made by [`copy_row`].
    fn im2col_padded(&self, image: &[f32], col: &mut [f32], row_stride: usize) {
        let (oh, ow, pad) = (self.out_h(), self.out_w(), self.padding);
        let (h, w) = (self.height, self.width);
        let wp = w + 2 * pad;
        let mut padded = vec![0f32; (h + 2 * pad) * wp];
        for ci in 0..self.c_in {
            let plane = &image[ci * h * w..][..h * w];
            for (y, row) in plane.chunks_exact(w).enumerate() {
                padded[(y + pad) * wp + pad..][..w].copy_from_slice(row);
            }
            for ky in 0..self.kernel_h {
                for kx in 0..self.kernel_w {
                    let tap = (ci * self.kernel_h + ky) * self.kernel_w + kx;
                    let out = &mut col[tap * row_stride..][..oh * ow];
                    for (oy, out) in out.chunks_exact_mut(ow).enumerate() {
                        copy_row(out, &padded[(oy + ky) * wp + kx..][..ow]);
                    }
                }
            }
        }
    }

    /// [`Self::im2col`] for a stride-1 convolution whose output is as large as its input: each
    /// patch row is then the input plane shifted by `(ky - padding) * width + kx - padding`, so
    /// it is one long copy; the columns that wrapped round a row edge, and the rows above and
    /// below the image, are zeroed after. For 7x7 planes this is several times faster than a
    /// copy per output row.
    fn im2col_same(
        &self,
        image: &[f32],
        col: &mut [f32],
        row_stride: usize,
        valid: &[std::ops::Range<usize>],
    ) {
        let (w, len) = (self.width, self.height * self.width);
        for ci in 0..self.c_in {
            let plane = &image[ci * len..][..len];
            for ky in 0..self.kernel_h {
                for (kx, valid) in valid.iter().enumerate() {
                    let tap = (ci * self.kernel_h + ky) * self.kernel_w + kx;
                    let row = &mut col[tap * row_stride..][..len];
                    let (lo, hi, shift) = self.same_run(ky, kx);
                    let from = (lo as isize + shift) as usize;
                    row[..lo].fill(0.0);
                    row[hi..].fill(0.0);
                    row[lo..hi].copy_from_slice(&plane[from..from + hi - lo]);
                    // Column by column: a `fill` per row would be a `memset` call per element.
                    for x in (0..valid.start).chain(valid.end..w) {
                        row[x..].iter_mut().step_by(w).for_each(|v| *v = 0.0);
                    }
                }
            }
        }
    }

    /// Images per product and images per rayon task. Small outputs (7x7, 14x14) side by side
    /// give the matrix kernel wide enough rows, and the kernel is packed once per group, not per
    /// image; a task holds whole groups. Both depend on the shapes alone, so sums never depend
    /// on the thread count.
    fn grouping(&self) -> (usize, usize) {
        self.tasks((GROUP_COLUMNS / self.positions().max(1)).clamp(1, 64))
    }

    /// `(group, images per task)` for groups of `group` images: a task holds whole groups and
    /// enough work to amortise scheduling, by shape alone.
    fn tasks(&self, group: usize) -> (usize, usize) {
        (
            group,
            images_per_task(self.out_len() * self.taps()).max(group),
        )
    }

    /// The scratch a group needs: its patches `[taps, columns]` and a `[c_out, columns]` block
    /// (the product forward, the gathered output gradients backward).
    fn group_scratch(&self) -> [usize; 2] {
        let columns = self.grouping().0 * self.positions();
        [self.taps() * columns, self.c_out * columns]
    }

    /// Adds a `[taps, positions]` block of patch gradients (rows `row_stride` apart, as in
    /// [`Self::im2col`]) back onto one image's gradient. The block is scratch: the same-size
    /// path zeroes the entries of its wrapped columns before adding. `valid` is
    /// [`Self::valid_columns`].
    fn col2im(
        &self,
        col: &mut [f32],
        row_stride: usize,
        image: &mut [f32],
        valid: &[std::ops::Range<usize>],
    ) {
        let (oh, ow, p) = (self.out_h(), self.out_w(), self.positions());
        image.fill(0.0);
        if self.stride == 1 && (oh, ow) == (self.height, self.width) {
            return self.col2im_same(col, row_stride, image, valid);
        }
        for ci in 0..self.c_in {
            let plane = &mut image[ci * self.height * self.width..][..self.height * self.width];
            for ky in 0..self.kernel_h {
                for (kx, valid) in valid.iter().enumerate() {
                    let tap = (ci * self.kernel_h + ky) * self.kernel_w + kx;
                    let row = &col[tap * row_stride..][..p];
                    for oy in 0..oh {
                        let Some(iy) = self.source_y(oy, ky) else {
                            continue;
                        };
                        let dst = &mut plane[iy * self.width..][..self.width];
                        let from = &row[oy * ow..][valid.clone()];
                        if self.stride == 1 {
                            let ix0 = valid.start + kx - self.padding;
                            for (d, &v) in dst[ix0..ix0 + valid.len()].iter_mut().zip(from) {
                                *d += v;
                            }
                        } else {
                            for (ox, &v) in valid.clone().zip(from) {
                                dst[ox * self.stride + kx - self.padding] += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`Self::col2im`] for a same-size stride-1 convolution, the mirror of
    /// [`Self::im2col_same`]: each patch row, its wrapped columns zeroed, is added to the plane
    /// as one shifted run. Every plane value gets its taps' terms in the same order as before.
    fn col2im_same(
        &self,
        col: &mut [f32],
        row_stride: usize,
        image: &mut [f32],
        valid: &[std::ops::Range<usize>],
    ) {
        let (w, len) = (self.width, self.height * self.width);
        for ci in 0..self.c_in {
            let plane = &mut image[ci * len..][..len];
            for ky in 0..self.kernel_h {
                for (kx, valid) in valid.iter().enumerate() {
                    let tap = (ci * self.kernel_h + ky) * self.kernel_w + kx;
                    let row = &mut col[tap * row_stride..][..len];
                    for x in (0..valid.start).chain(valid.end..w) {
                        row[x..].iter_mut().step_by(w).for_each(|v| *v = 0.0);
                    }
                    let (lo, hi, shift) = self.same_run(ky, kx);
                    let from = (lo as isize + shift) as usize;
                    for (d, &v) in plane[from..from + hi - lo].iter_mut().zip(&row[lo..hi]) {
                        *d += v;
                    }
                }
            }
        }
    }

    /// For tap `(ky, kx)` of a same-size stride-1 convolution: the run `lo..hi` of output
    /// positions whose shifted source `position + shift` lies inside the plane.
    fn same_run(&self, ky: usize, kx: usize) -> (usize, usize, isize) {
        let (w, len) = (self.width as isize, (self.height * self.width) as isize);
        let shift = (ky as isize - self.padding as isize) * w + kx as isize - self.padding as isize;
        let lo = (-shift).clamp(0, len);
        let hi = (len - shift).clamp(lo, len);
        (lo as usize, hi as usize, shift)
    }

    /// Copies one image's output gradient `[k, positions]` into columns `offset..` of a
    /// `[k, row_stride]` block, so a group's gradients form one matrix.
    fn gather_rows(&self, grad: &[f32], block: &mut [f32], row_stride: usize, offset: usize) {
        let p = self.positions();
        for (from, to) in grad.chunks(p).zip(block.chunks_mut(row_stride)) {
            to[offset..offset + p].copy_from_slice(from);
        }
    }
}

/// Copies a short row (a patch row of 5 to 30 values) in fixed 8-value moves, the last one
/// overlapping the one before. `copy_from_slice` on a run of unknown length calls `memmove`, and
/// those calls were about 7% of a zoo net 11.1 training step (2026-12-03).
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    const BLOCK: usize = 8;
    let len = dst.len();
    assert_eq!(len, src.len(), "copy_row: lengths differ");
    if len < BLOCK {
        dst.copy_from_slice(src);
        return;
    }
    let mut i = 0;
    while i + BLOCK <= len {
        dst[i..i + BLOCK].copy_from_slice(&src[i..i + BLOCK]);
        i += BLOCK;
    }
    if i < len {
        dst[len - BLOCK..].copy_from_slice(&src[len - BLOCK..]);
    }
}

/// What happens to each value of a convolution's product on its way into the NCHW output: the
/// conv's bias, then optionally an inference batch norm's per-channel scale and shift, a
/// residual input, and a ReLU. They are applied in the order, and with the f32 operations, of
/// the separate ops (conv, [`super::BatchNorm`], candle's add and ReLU), so the fused result has
/// the same bits.
pub struct Epilogue {
    pub bias: Vec<f32>,
    /// `(scale, shift)` per output channel, as [`super::batch_norm::inference_affine`] makes them.
    pub affine: Option<(Vec<f32>, Vec<f32>)>,
    pub relu: bool,
}

/// An [`Epilogue`]'s row function: `(epilogue, channel, out, product, skip)`.
type RowFn = fn(&Epilogue, usize, &mut [f32], &[f32], &[f32]);

impl Epilogue {
    fn check(&self, channels: usize) -> CResult<()> {
        let affine_ok = self
            .affine
            .as_ref()
            .is_none_or(|(a, b)| a.len() == channels && b.len() == channels);
        if self.bias.len() != channels || !affine_ok {
            candle_core::bail!(
                "conv2d: bias or batch norm has {} values for {channels} channels",
                self.bias.len()
            );
        }
        Ok(())
    }

    /// One output row (one channel of one image) from its product row and residual row.
    #[inline(always)]
    fn row<const AFFINE: bool, const SKIP: bool, const RELU: bool>(
        &self,
        channel: usize,
        out: &mut [f32],
        product: &[f32],
        skip: &[f32],
    ) {
        let bias = self.bias[channel];
        let (a, b) = match &self.affine {
            Some((a, b)) if AFFINE => (a[channel], b[channel]),
            _ => (1.0, 0.0),
        };
        let value = |v: f32| {
            let y = v + bias;
            if AFFINE {
                a * y + b
            } else {
                y
            }
        };
        let relu = |y: f32| if RELU { y.max(0.0) } else { y };
        if SKIP {
            for ((o, &v), &s) in out.iter_mut().zip(product).zip(skip) {
                *o = relu(value(v) + s);
            }
        } else {
            for (o, &v) in out.iter_mut().zip(product) {
                *o = relu(value(v));
            }
        }
    }

    /// [`Self::row`] for this epilogue's combination, picked once per op.
    fn row_fn(&self, skip: bool) -> RowFn {
        match (self.affine.is_some(), skip, self.relu) {
            (false, false, false) => Self::row::<false, false, false>,
            (false, false, true) => Self::row::<false, false, true>,
            (false, true, false) => Self::row::<false, true, false>,
            (false, true, true) => Self::row::<false, true, true>,
            (true, false, false) => Self::row::<true, false, false>,
            (true, false, true) => Self::row::<true, false, true>,
            (true, true, false) => Self::row::<true, true, false>,
            (true, true, true) => Self::row::<true, true, true>,
        }
    }
}

/// The forward of a convolution: groups of images' patches into one product each, then the
/// epilogue on the way back to NCHW. `skip`, when given, has the output's shape.
fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    epilogue: &Epilogue,
    skip: Option<&[f32]>,
) -> Vec<f32> {
    if g.winograd() {
        return winograd::forward(g, x, w, epilogue, skip);
    }
    let (p, taps, k) = (g.positions(), g.taps(), g.c_out);
    let valid = g.valid_columns();
    let im2col_product = |images: &[f32], [col, product]: &mut [&mut [f32]; 2]| {
        let cols = images.len() / g.image_len() * p;
        for (i, image) in images.chunks(g.image_len()).enumerate() {
            g.im2col(image, &mut col[i * p..], cols, &valid);
        }
        matmul(
            (k, cols, taps),
            product,
            (cols, 1),
            false,
            w,
            (taps, 1),
            col,
            (cols, 1),
        );
    };
    forward_groups(
        g,
        x,
        epilogue,
        skip,
        g.grouping(),
        g.group_scratch(),
        im2col_product,
    )
}

/// The frame of both forwards: tasks of whole groups of images, cut by shape alone and run in
/// parallel, each group's products made by `products` into the last of this thread's `scratch`
/// slices (`[c_out, images * positions]`) and taken from there through the epilogue.
fn forward_groups<const N: usize>(
    g: &ConvGeometry,
    x: &[f32],
    epilogue: &Epilogue,
    skip: Option<&[f32]>,
    (group, per_task): (usize, usize),
    scratch: [usize; N],
    products: impl Fn(&[f32], &mut [&mut [f32]; N]) + Sync,
) -> Vec<f32> {
    let finish = epilogue.row_fn(skip.is_some());
    let mut out = vec![0f32; g.batch * g.out_len()];
    // Without a residual input every task reads the same empty slice.
    let skips: Vec<&[f32]> = match skip {
        Some(s) => s.chunks(g.out_len() * per_task).collect(),
        None => vec![&[]; out.len().div_ceil(g.out_len() * per_task)],
    };
    out.par_chunks_mut(g.out_len() * per_task)
        .zip(x.par_chunks(g.image_len() * per_task))
        .zip(skips.into_par_iter())
        .for_each(|((outs, images), skips)| {
            with_scratch(scratch, |mut buffers| {
                for (j, (outs, images)) in outs
                    .chunks_mut(g.out_len() * group)
                    .zip(images.chunks(g.image_len() * group))
                    .enumerate()
                {
                    products(images, &mut buffers);
                    let product = &buffers[N - 1];
                    finish_group(g, epilogue, finish, outs, product, skips, j * group);
                }
            });
        });
    out
}

/// One group's products `[c_out, images * positions]` (image `i` at column `i * positions`) back
/// to NCHW `outs` through the epilogue; `first` is the group's first image within `skips`.
fn finish_group(
    g: &ConvGeometry,
    epilogue: &Epilogue,
    finish: RowFn,
    outs: &mut [f32],
    product: &[f32],
    skips: &[f32],
    first: usize,
) {
    let p = g.positions();
    let cols = outs.len() / g.out_len() * p;
    for (i, o) in outs.chunks_mut(g.out_len()).enumerate() {
        for (c, row) in o.chunks_mut(p).enumerate() {
            let from = &product[c * cols + i * p..][..p];
            let skip = if skips.is_empty() {
                &[][..]
            } else {
                &skips[((first + i) * g.c_out + c) * p..][..p]
            };
            finish(epilogue, c, row, from, skip);
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
        let epilogue = Epilogue {
            bias: b.to_vec(),
            affine: None,
            relu: false,
        };
        epilogue.check(g.c_out)?;
        let out = forward(&g, x, w, &epilogue, None);
        Ok((CpuStorage::F32(out), g.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        ws: &CudaStorage,
        wl: &Layout,
        bs: &CudaStorage,
        bl: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        gpu::forward(&self.geometry(xl, wl)?, (xs, xl), (ws, wl), (bs, bl))
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

/// An inference convolution with its [`Epilogue`] fused in: `conv2d(x, w)`, bias, batch norm,
/// optional residual input (the third tensor of the `CustomOp3` form) and ReLU, in one pass over
/// the output. No backward: the layers use it only when no gradient is wanted.
pub struct Conv2dInference {
    pub conv: Conv2d,
    pub epilogue: Epilogue,
}

impl Conv2dInference {
    fn run(
        &self,
        (xs, xl): (&CpuStorage, &Layout),
        (ws, wl): (&CpuStorage, &Layout),
        skip: Option<(&CpuStorage, &Layout)>,
    ) -> CResult<(CpuStorage, Shape)> {
        let g = self.conv.geometry(xl, wl)?;
        let (x, w) = (f32_slice(xs, xl, "conv2d")?, f32_slice(ws, wl, "conv2d")?);
        self.epilogue.check(g.c_out)?;
        let skip = match skip {
            Some((ss, sl)) => {
                if sl.shape() != &g.out_shape() {
                    candle_core::bail!(
                        "conv2d: residual input {:?} does not match the output {:?}",
                        sl.shape(),
                        g.out_shape()
                    );
                }
                Some(f32_slice(ss, sl, "conv2d residual")?)
            }
            None => None,
        };
        let out = forward(&g, x, w, &self.epilogue, skip);
        Ok((CpuStorage::F32(out), g.out_shape()))
    }
}

impl CustomOp2 for Conv2dInference {
    fn name(&self) -> &'static str {
        "wna-conv2d-inference"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        self.run((xs, xl), (ws, wl), None)
    }
}

impl CustomOp3 for Conv2dInference {
    fn name(&self) -> &'static str {
        "wna-conv2d-inference-residual"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        ss: &CpuStorage,
        sl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        self.run((xs, xl), (ws, wl), Some((ss, sl)))
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
        let (p, taps, k) = (g.positions(), g.taps(), g.c_out);
        let (group, per_task) = g.grouping();
        let valid = g.valid_columns();
        let mut out = vec![0f32; g.batch * g.image_len()];
        out.par_chunks_mut(g.image_len() * per_task)
            .zip(grad.par_chunks(g.out_len() * per_task))
            .for_each(|(images, grads)| {
                with_scratch(g.group_scratch(), |[col, block]| {
                    for (images, grads) in images
                        .chunks_mut(g.image_len() * group)
                        .zip(grads.chunks(g.out_len() * group))
                    {
                        let cols = grads.len() / g.out_len() * p;
                        for (i, go) in grads.chunks(g.out_len()).enumerate() {
                            g.gather_rows(go, block, cols, i * p);
                        }
                        // col = w^T . grad: w is [k, taps] row-major, read transposed via strides.
                        matmul(
                            (taps, cols, k),
                            col,
                            (cols, 1),
                            false,
                            w,
                            (1, taps),
                            block,
                            (cols, 1),
                        );
                        for (i, image) in images.chunks_mut(g.image_len()).enumerate() {
                            g.col2im(&mut col[i * p..], cols, image, &valid);
                        }
                    }
                });
            });
        let shape = Shape::from((g.batch, g.c_in, g.height, g.width));
        Ok((CpuStorage::F32(out), shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        gs: &CudaStorage,
        gl: &Layout,
        ws: &CudaStorage,
        wl: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        gpu::grad_input(&self.0, (gs, gl), (ws, wl))
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
        let (group, per_task) = g.grouping();
        let valid = g.valid_columns();
        let total = sum_in_order(
            x.par_chunks(g.image_len() * per_task)
                .zip(grad.par_chunks(g.out_len() * per_task))
                .map(|(images, grads)| {
                    let mut acc = vec![0f32; k * taps + k];
                    let (acc_w, acc_b) = acc.split_at_mut(k * taps);
                    with_scratch(g.group_scratch(), |[col, block]| {
                        for (images, grads) in images
                            .chunks(g.image_len() * group)
                            .zip(grads.chunks(g.out_len() * group))
                        {
                            let cols = grads.len() / g.out_len() * p;
                            for (i, (image, go)) in images
                                .chunks(g.image_len())
                                .zip(grads.chunks(g.out_len()))
                                .enumerate()
                            {
                                g.im2col(image, &mut col[i * p..], cols, &valid);
                                g.gather_rows(go, block, cols, i * p);
                                for (sum, row) in acc_b.iter_mut().zip(go.chunks(p)) {
                                    *sum += row.iter().sum::<f32>();
                                }
                            }
                            // acc_w += grad (k x cols) . col^T (cols x taps)
                            matmul(
                                (k, taps, cols),
                                acc_w,
                                (taps, 1),
                                true,
                                block,
                                (cols, 1),
                                col,
                                (1, cols),
                            );
                        }
                    });
                    acc
                })
                .collect::<Vec<_>>(),
        );
        let len = total.len();
        Ok((CpuStorage::F32(total), Shape::from(len)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        gpu::grad_weight(&self.0, (xs, xl), (gs, gl))
    }
}
