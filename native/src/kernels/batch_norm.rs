//! Batch norm (optionally fused with the ReLU after it) and its gradients, in one pass each.

use super::{f32_slice, images_per_task, sum_in_order, CResult};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

pub mod gpu;

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

impl BatchNorm {
    /// That gamma, beta and the statistics each have one value per channel of `c`.
    fn check(&self, c: usize, gamma: usize, beta: usize) -> CResult<()> {
        if gamma != c || beta != c || self.mean.len() != c || self.invstd.len() != c {
            candle_core::bail!("batch norm: parameters do not match {c} channels");
        }
        Ok(())
    }
}

fn channel_layout(shape: &Shape) -> CResult<(usize, usize, usize)> {
    let dims = shape.dims();
    if dims.len() < 2 {
        candle_core::bail!("batch norm: input needs at least 2 dimensions, got {shape:?}");
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

/// Independent accumulators per plane sum: one f32 add chain per lane instead of one per plane,
/// so the sums vectorise. The lanes are combined in a fixed order, so results still depend on the
/// shapes alone. With a single chain, the batch norms of a zoo net 11.1 training step took 3.2 ms
/// of its 21 (2026-12-03).
const LANES: usize = 16;

/// The lanes' total, added pairwise in a fixed order.
#[inline(always)]
fn lane_total(lanes: [f32; LANES]) -> f32 {
    let mut width = LANES;
    let mut l = lanes;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            l[j] += l[j + width];
        }
    }
    l[0]
}

/// Per-channel mean and biased variance of `[n, c, ...]`, summed in f64 (one pass).
pub fn channel_statistics(x: &[f32], channels: usize, spatial: usize) -> (Vec<f32>, Vec<f32>) {
    let per_image = channels * spatial;
    let sums = sum_in_order(
        x.par_chunks(per_image * images_per_task(per_image))
            .map(|images| {
                let mut acc = vec![0f64; 2 * channels];
                statistics_sums(images, channels, spatial, &mut acc);
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

/// [`channel_statistics`] as an op on any device: `[mean; var]` of `[n, c, ...]` as a `[2c]`
/// tensor, summed in f64 on the CPU and on CUDA (`gpu.rs`). No backward: the layers pass the
/// statistics to [`BatchNorm`], whose backward differentiates them.
pub struct ChannelStatistics;

impl CustomOp1 for ChannelStatistics {
    fn name(&self) -> &'static str {
        "wna-channel-statistics"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (_, c, spatial) = channel_layout(l.shape())?;
        let (mean, var) = channel_statistics(f32_slice(s, l, "batch norm")?, c, spatial);
        Ok((CpuStorage::F32([mean, var].concat()), Shape::from(2 * c)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> CResult<(CudaStorage, Shape)> {
        gpu::statistics(s, l)
    }
}

/// Adds the sums and sums of squares of each channel of `images` to `acc` (`[sum, sum of squares]`
/// per channel). `[n, c]` rows (spatial 1) are summed across channels at once; planes lane-wise.
#[inline(always)]
fn statistics_sums_body(images: &[f32], channels: usize, spatial: usize, acc: &mut [f64]) {
    if spatial == 1 {
        let mut sums = vec![0f32; 2 * channels];
        let (s1, s2) = sums.split_at_mut(channels);
        for row in images.chunks_exact(channels) {
            for ((a, b), &v) in s1.iter_mut().zip(s2.iter_mut()).zip(row) {
                *a += v;
                *b += v * v;
            }
        }
        for c in 0..channels {
            acc[2 * c] += s1[c] as f64;
            acc[2 * c + 1] += s2[c] as f64;
        }
        return;
    }
    for (i, plane) in images.chunks_exact(spatial).enumerate() {
        let (mut l1, mut l2) = ([0f32; LANES], [0f32; LANES]);
        let mut chunks = plane.chunks_exact(LANES);
        for chunk in &mut chunks {
            for j in 0..LANES {
                l1[j] += chunk[j];
                l2[j] += chunk[j] * chunk[j];
            }
        }
        let (mut t1, mut t2) = (lane_total(l1), lane_total(l2));
        for &v in chunks.remainder() {
            t1 += v;
            t2 += v * v;
        }
        let c = i % channels;
        acc[2 * c] += t1 as f64;
        acc[2 * c + 1] += t2 as f64;
    }
}

simd_dispatch! {
    fn statistics_sums = statistics_sums_body(images: &[f32], channels: usize, spatial: usize, acc: &mut [f64]) -> ()
}

/// A batch norm with fixed statistics as one scale and shift per channel: `gamma * invstd` and
/// `beta - mean * scale`. The fused convolution ([`super::Conv2dInference`]) takes the same
/// pair, so both paths give the same bits.
pub fn inference_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    invstd: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(invstd).map(|(g, s)| g * s).collect();
    let shift = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), a)| b - m * a)
        .collect();
    (scale, shift)
}

/// `out = scale * x + shift` per channel of `[n, c, spatial]` images, then ReLU if asked.
#[inline(always)]
fn affine_body(
    x: &[f32],
    out: &mut [f32],
    scale: &[f32],
    shift: &[f32],
    spatial: usize,
    relu: bool,
) {
    let c = scale.len();
    if spatial == 1 {
        for (o, x) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
            for (((o, &x), &a), &b) in o.iter_mut().zip(x).zip(scale).zip(shift) {
                *o = relu_if(relu, a * x + b);
            }
        }
        return;
    }
    for (i, (o, x)) in out
        .chunks_exact_mut(spatial)
        .zip(x.chunks_exact(spatial))
        .enumerate()
    {
        let (a, b) = (scale[i % c], shift[i % c]);
        for (o, &x) in o.iter_mut().zip(x) {
            *o = relu_if(relu, a * x + b);
        }
    }
}

/// `max(v, 0)` when `relu`, else `v`.
#[inline(always)]
fn relu_if(relu: bool, v: f32) -> f32 {
    if relu {
        v.max(0.0)
    } else {
        v
    }
}

simd_dispatch! {
    fn affine = affine_body(x: &[f32], out: &mut [f32], scale: &[f32], shift: &[f32], spatial: usize, relu: bool) -> ()
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
        self.check(c, gamma.len(), beta.len())?;
        let (scale, shift) = inference_affine(gamma, beta, &self.mean, &self.invstd);
        let mut out = vec![0f32; x.len()];
        let per_task = c * spatial * images_per_task(c * spatial);
        out.par_chunks_mut(per_task)
            .zip(x.par_chunks(per_task))
            .for_each(|(o, x)| affine(x, o, &scale, &shift, spatial, self.relu));
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
        bs: &CudaStorage,
        bl: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        let c = channel_layout(xl.shape())?.1;
        self.check(c, gl.shape().elem_count(), bl.shape().elem_count())?;
        gpu::forward(self, (xs, xl), (gs, gl), (bs, bl))
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
pub struct BatchNormGrad {
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
        let sums = sum_in_order(
            x.par_chunks(per_task)
                .zip(y.par_chunks(per_task))
                .zip(dy.par_chunks(per_task))
                .map(|((x, y), dy)| {
                    let mut acc = vec![0f64; 2 * c];
                    grad_sums(x, y, dy, self, spatial, &mut acc);
                    acc
                })
                .collect::<Vec<_>>(),
        );
        let count = (x.len() / c.max(1)) as f32;
        let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..c)
            .map(|ch| (sums[ch] as f32, sums[c + ch] as f32))
            .unzip();
        // With batch statistics, the means of dz and of dz * xhat enter every dx.
        let means: Vec<f32> = if self.batch_statistics {
            dbeta.iter().chain(&dgamma).map(|v| v / count).collect()
        } else {
            Vec::new()
        };
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, params) = out.split_at_mut(x.len());
        dx.par_chunks_mut(per_task)
            .zip(x.par_chunks(per_task))
            .zip(y.par_chunks(per_task).zip(dy.par_chunks(per_task)))
            .for_each(|((dx, x), (y, dy))| grad_input(dx, x, y, dy, self, &means, spatial));
        params[..c].copy_from_slice(&dgamma);
        params[c..].copy_from_slice(&dbeta);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        ys: &CudaStorage,
        yl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        gpu::grad(self, (xs, xl), (ys, yl), (gs, gl))
    }
}

/// The gradient reaching the affine output: the ReLU, when fused, passes it where the output `y`
/// is positive.
#[inline(always)]
fn reaching(relu: bool, y: f32, dy: f32) -> f32 {
    if !relu || y > 0.0 {
        dy
    } else {
        0.0
    }
}

/// Adds, per channel of `[n, c, spatial]` images, the sum of `dz` to `acc[ch]` and of
/// `dz * xhat` to `acc[c + ch]`.
#[inline(always)]
fn grad_sums_body(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    op: &BatchNormGrad,
    spatial: usize,
    acc: &mut [f64],
) {
    let c = op.mean.len();
    if spatial == 1 {
        let mut sums = vec![0f32; 2 * c];
        let (s1, s2) = sums.split_at_mut(c);
        for ((x, y), dy) in x
            .chunks_exact(c)
            .zip(y.chunks_exact(c))
            .zip(dy.chunks_exact(c))
        {
            for ch in 0..c {
                let d = reaching(op.relu, y[ch], dy[ch]);
                s1[ch] += d;
                s2[ch] += d * (x[ch] - op.mean[ch]) * op.invstd[ch];
            }
        }
        for ch in 0..c {
            acc[ch] += s1[ch] as f64;
            acc[c + ch] += s2[ch] as f64;
        }
        return;
    }
    for (i, ((x, y), dy)) in x
        .chunks_exact(spatial)
        .zip(y.chunks_exact(spatial))
        .zip(dy.chunks_exact(spatial))
        .enumerate()
    {
        let ch = i % c;
        let (m, s) = (op.mean[ch], op.invstd[ch]);
        let (mut l1, mut l2) = ([0f32; LANES], [0f32; LANES]);
        let whole = spatial / LANES * LANES;
        for start in (0..whole).step_by(LANES) {
            for j in 0..LANES {
                let d = reaching(op.relu, y[start + j], dy[start + j]);
                l1[j] += d;
                l2[j] += d * (x[start + j] - m) * s;
            }
        }
        let (mut sum, mut sum_xhat) = (lane_total(l1), lane_total(l2));
        for k in whole..spatial {
            let d = reaching(op.relu, y[k], dy[k]);
            sum += d;
            sum_xhat += d * (x[k] - m) * s;
        }
        acc[ch] += sum as f64;
        acc[c + ch] += sum_xhat as f64;
    }
}

simd_dispatch! {
    fn grad_sums = grad_sums_body(x: &[f32], y: &[f32], dy: &[f32], op: &BatchNormGrad, spatial: usize, acc: &mut [f64]) -> ()
}

/// `dx` of `[n, c, spatial]` images. `means` is empty for fixed statistics, else the per-channel
/// means of `dz` then of `dz * xhat`: `dx = g*s/M * (M*dz - sum(dz) - xhat*sum(dz*xhat))`.
#[inline(always)]
fn grad_input_body(
    dx: &mut [f32],
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    op: &BatchNormGrad,
    means: &[f32],
    spatial: usize,
) {
    let c = op.mean.len();
    let planes = dx
        .chunks_exact_mut(spatial)
        .zip(x.chunks_exact(spatial))
        .zip(y.chunks_exact(spatial).zip(dy.chunks_exact(spatial)));
    for (i, ((dx, x), (y, dy))) in planes.enumerate() {
        let ch = i % c;
        let (m, s) = (op.mean[ch], op.invstd[ch]);
        let scale = op.gamma[ch] * s;
        if means.is_empty() {
            for k in 0..spatial {
                dx[k] = scale * reaching(op.relu, y[k], dy[k]);
            }
        } else {
            let (mean_dz, mean_dz_xhat) = (means[ch], means[c + ch]);
            for k in 0..spatial {
                let xhat = (x[k] - m) * s;
                dx[k] = scale * (reaching(op.relu, y[k], dy[k]) - mean_dz - xhat * mean_dz_xhat);
            }
        }
    }
}

simd_dispatch! {
    fn grad_input = grad_input_body(dx: &mut [f32], x: &[f32], y: &[f32], dy: &[f32], op: &BatchNormGrad, means: &[f32], spatial: usize) -> ()
}
