//! Leaky ReLU in one pass each way. candle-nn's `leaky_relu` is `max(x, 0) + min(x, 0) * slope`:
//! five tensors forward, and a backward through `maximum` and `minimum` that builds equality
//! masks for both, about fifteen passes over the activations in all. In the MLP GAN, whose
//! every hidden layer is a leaky ReLU, those passes took more time than the matrix products.

use super::{f32_slice, CResult};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Floats per rayon task: an element-wise pass is too cheap to split finer. A GAN batch (`[128,
/// 1024]`) is one task: split in four it took 30 us a pass, whole 17 us (2026-12-03).
const CHUNK: usize = 1 << 18;

/// `x` where `x > 0`, else `slope * x`.
pub struct LeakyRelu {
    pub slope: f32,
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "wna-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "leaky relu")?;
        let slope = self.slope;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| forward(o, x, slope));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(
            &grad,
            &LeakyReluGrad { slope: self.slope },
        )?))
    }
}

/// `grad` where `x > 0`, else `slope * grad` (PyTorch's choice at `x == 0`).
struct LeakyReluGrad {
    slope: f32,
}

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "wna-leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32_slice(xs, xl, "leaky relu grad")?;
        let g = f32_slice(gs, gl, "leaky relu grad")?;
        if g.len() != x.len() {
            candle_core::bail!(
                "leaky relu grad: {} gradients for {} inputs",
                g.len(),
                x.len()
            );
        }
        let slope = self.slope;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(d, (x, g))| backward(d, x, g, slope));
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// `out = x` where `x > 0`, else `slope * x`.
#[inline(always)]
fn forward_body(out: &mut [f32], x: &[f32], slope: f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = if v > 0.0 { v } else { v * slope };
    }
}

simd_dispatch! {
    /// Built for AVX-512/AVX2, where the choice compiles to a compare and a blend: the baseline
    /// build branched on every sign, 300 us for a `[128, 1024]` batch against 17 us now
    /// (2026-12-03).
    fn forward = forward_body(out: &mut [f32], x: &[f32], slope: f32) -> ()
}

/// `dx = grad` where `x > 0`, else `slope * grad`.
#[inline(always)]
fn backward_body(dx: &mut [f32], x: &[f32], grad: &[f32], slope: f32) {
    for ((d, &v), &g) in dx.iter_mut().zip(x).zip(grad) {
        *d = if v > 0.0 { g } else { g * slope };
    }
}

simd_dispatch! {
    fn backward = backward_body(dx: &mut [f32], x: &[f32], grad: &[f32], slope: f32) -> ()
}
