//! Batch norm (optionally fused with the ReLU after it) and its gradients, in one pass each.

use super::{f32_slice, images_per_task, sum_in_order, CResult};
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

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
        let (scale, shift) = inference_affine(gamma, beta, &self.mean, &self.invstd);
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
