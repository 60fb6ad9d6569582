//! The fully connected layer and its gradients, the weight gradient written in place.

use super::{f32_slice, matmul, parallel_matmul, parallel_matmul_into, transpose, CResult};
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

/// A fully connected layer `x . w^T + b` with x `[n, in]`, w `[out, in]` (candle-nn's layout),
/// b `[out]`. candle's own linear returns the weight gradient as a transposed view, which every
/// optimiser step then had to copy element by element; this one writes it in place.
pub struct Linear;

/// Whether the forward transposes its input so that every operand is row-major: only where the
/// weight rows lie a multiple of 4 KiB apart (1024, 2048... inputs). Read as `x . w^T`, `gemm`
/// packs `w` across its rows, and rows 4 KiB apart collide in the cache: a 128 x 128 x 1024
/// product ran at 49 GFLOP/s, against 109 with every operand row-major (2026-12-03). For other
/// widths the two transposes cost more than they save (a GAN batch through 784 -> 1024: 1.1 ms
/// as it was, 1.5 ms transposed), and a one-output head never gains.
fn transposed_forward(fan_in: usize, out: usize) -> bool {
    fan_in.is_multiple_of(1024) && out >= 16
}

/// Weight rows per task of the transposed forward. Each output element is one serial product's,
/// so results do not depend on the thread count.
const ROWS_PER_TASK: usize = 128;

fn linear_dims(x: &Layout, w: &Layout) -> CResult<(usize, usize, usize)> {
    let (n, fan_in) = x.shape().dims2()?;
    let (out, fan_in2) = w.shape().dims2()?;
    if fan_in != fan_in2 {
        candle_core::bail!("linear: input has {fan_in} features, weight expects {fan_in2}");
    }
    Ok((n, fan_in, out))
}

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
        if !transposed_forward(fan_in, out) {
            // Every row starts as the bias, copied rather than written over zeros.
            let mut y = Vec::with_capacity(n * out);
            (0..n).for_each(|_| y.extend_from_slice(b));
            parallel_matmul(
                (n, out, fan_in),
                &mut y,
                (out, 1),
                true,
                x,
                (fan_in, 1),
                w,
                (1, fan_in),
            );
            return Ok((CpuStorage::F32(y), Shape::from((n, out))));
        }
        // y^T = w . x^T, with x transposed first: every operand row-major.
        let x_t = transpose(x, n, fan_in);
        let mut y_t = Vec::with_capacity(out * n);
        b.iter()
            .for_each(|&v| y_t.extend(std::iter::repeat_n(v, n)));
        y_t.par_chunks_mut(ROWS_PER_TASK * n)
            .zip(w.par_chunks(ROWS_PER_TASK * fan_in))
            .for_each(|(y_t, w)| {
                let rows = y_t.len() / n;
                matmul(
                    (rows, n, fan_in),
                    y_t,
                    (n, 1),
                    true,
                    w,
                    (fan_in, 1),
                    &x_t,
                    (n, 1),
                );
            });
        let y = transpose(&y_t, out, n);
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
        let len = x_len + out * fan_in + out;
        // Both products store every element of their blocks, and the bias gradient is written
        // whole, so the vector is filled once rather than zeroed first.
        let mut all: Vec<f32> = Vec::with_capacity(len);
        let (dx, rest) = all.spare_capacity_mut()[..len].split_at_mut(x_len);
        let (dw, db) = rest.split_at_mut(out * fan_in);
        if self.input_gradient {
            // dx = dy . w
            parallel_matmul_into(
                (n, fan_in, out),
                dx,
                (fan_in, 1),
                (dy, (out, 1)),
                (w, (fan_in, 1)),
            );
        }
        // dw = dy^T . x
        parallel_matmul_into(
            (out, fan_in, n),
            dw,
            (fan_in, 1),
            (dy, (1, out)),
            (x, (fan_in, 1)),
        );
        let mut sums = vec![0f32; out];
        for row in dy.chunks(out) {
            sums.iter_mut().zip(row).for_each(|(s, &g)| *s += g);
        }
        for (to, sum) in db.iter_mut().zip(sums) {
            to.write(sum);
        }
        // SAFETY: the products wrote all of `dx` and `dw` (dense strides over whole blocks), and
        // the loop above all of `db`: the first `len` elements are initialised.
        unsafe { all.set_len(len) };
        Ok((CpuStorage::F32(all), Shape::from(len)))
    }
}
