//! 2x2 max-pooling and its backward (ties to the first maximum, as PyTorch).

use super::{f32_slice, CResult};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

pub mod gpu;

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

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> CResult<(CudaStorage, Shape)> {
        gpu::forward(s, l)
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

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        gpu::grad((xs, xl), (gs, gl))
    }
}
