//! The fully connected layer and its gradients, the weight gradient written in place.

use super::{f32_slice, strided_gemm, CResult};
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

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
