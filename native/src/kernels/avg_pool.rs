//! Average pooling with a square window as its own stride (PyTorch's `AvgPool2d(size)`, floor
//! mode) and its backward, one pass each. candle's pool needs a ragged edge cut off first (a
//! strided copy), and its backward upsamples the gradient, scales it and pads it back out (three
//! more passes over the input's size).

use super::{f32_slice, CResult};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// `size x size` average pooling with stride `size`; trailing rows and columns that do not fill a
/// window are left out, as in PyTorch. Each window is summed row by row and scaled by
/// `1 / size^2`, as candle's pool does, so both give the same bits.
pub struct AvgPool {
    pub size: usize,
}

/// Planes per rayon task.
const PLANES_PER_TASK: usize = 64;

impl AvgPool {
    /// `(planes, h, w, oh, ow)` of an `[n, c, h, w]` input.
    fn dims(&self, shape: &Shape) -> CResult<(usize, usize, usize, usize, usize)> {
        let (n, c, h, w) = shape.dims4()?;
        if self.size == 0 || self.size > h || self.size > w {
            candle_core::bail!(
                "avg pool: a {0}x{0} window does not fit a {h}x{w} input",
                self.size
            );
        }
        Ok((n * c, h, w, h / self.size, w / self.size))
    }

    /// The weight of each input in its window's mean: `1 / size^2`, rounded as candle rounds it.
    fn scale(&self) -> f32 {
        (1f64 / (self.size * self.size) as f64) as f32
    }
}

impl CustomOp1 for AvgPool {
    fn name(&self) -> &'static str {
        "wna-avg-pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (planes, h, w, oh, ow) = self.dims(l.shape())?;
        let x = f32_slice(s, l, "avg pool")?;
        let (k, scale) = (self.size, self.scale());
        let mut out = vec![0f32; planes * oh * ow];
        out.par_chunks_mut(oh * ow * PLANES_PER_TASK)
            .zip(x.par_chunks(h * w * PLANES_PER_TASK))
            .for_each(|(o, x)| {
                for (o, x) in o.chunks_mut(oh * ow).zip(x.chunks(h * w)) {
                    for (oy, o) in o.chunks_mut(ow).enumerate() {
                        for (ox, o) in o.iter_mut().enumerate() {
                            let mut sum = 0f32;
                            for row in x[oy * k * w + ox * k..].chunks(w).take(k) {
                                for &v in &row[..k] {
                                    sum += v;
                                }
                            }
                            *o = sum * scale;
                        }
                    }
                }
            });
        let (n, c, _, _) = l.shape().dims4()?;
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let op = AvgPoolGrad {
            size: self.size,
            input: x.shape().clone(),
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// The input gradient of [`AvgPool`]: each window's gradient times `1 / size^2` on every input
/// of the window, zero on the left-out edge.
struct AvgPoolGrad {
    size: usize,
    input: Shape,
}

impl CustomOp1 for AvgPoolGrad {
    fn name(&self) -> &'static str {
        "wna-avg-pool-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let pool = AvgPool { size: self.size };
        let (planes, h, w, oh, ow) = pool.dims(&self.input)?;
        let g = f32_slice(s, l, "avg pool grad")?;
        if g.len() != planes * oh * ow {
            candle_core::bail!("avg pool grad: gradient has {} values", g.len());
        }
        let (k, scale) = (self.size, pool.scale());
        let mut dx = vec![0f32; planes * h * w];
        dx.par_chunks_mut(h * w * PLANES_PER_TASK)
            .zip(g.par_chunks(oh * ow * PLANES_PER_TASK))
            .for_each(|(dx, g)| {
                for (dx, g) in dx.chunks_mut(h * w).zip(g.chunks(oh * ow)) {
                    for (y, row) in dx.chunks_mut(w).take(oh * k).enumerate() {
                        let g = &g[y / k * ow..][..ow];
                        for (ox, &v) in g.iter().enumerate() {
                            row[ox * k..][..k].fill(v * scale);
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(dx), self.input.clone()))
    }
}
