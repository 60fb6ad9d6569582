//! One recurrent layer (tanh RNN or LSTM) as one CPU op, forward and backward through time.
//! candle's own ops took about 15 allocating, mostly strided passes per step, which made `rnn`
//! and `lstm` 10x slower than PyTorch; here each step is one gemm into a gates buffer and one
//! fused element-wise pass over the batch rows, in parallel.
//!
//! The op takes the layer's input `x` `[batch, steps, input]`, its weights side by side,
//! `[W_ih | W_hh]` `[gates * hidden, input + hidden]`, and the summed biases `b_ih + b_hh`
//! `[gates * hidden]`; it gives every step's state `[batch, steps, hidden]`. Each step's gates are
//! the biases plus one product, `[x_t | h_{t-1}] [W_ih | W_hh]^T`. The input's share used to be
//! one big `x W_ih^T` product before the op: a `[batch, steps, gates * hidden]` tensor (57 MB for
//! 1,000 LSTM images) written to fresh pages and read back once, with its page faults a tenth of
//! an LSTM's white-noise run. The backward recomputes the forward trace rather than storing it
//! between the passes, and returns the gradients of `x`, of both weights and of the biases.
//!
//! Batch rows are independent through time, so the work is split over the batch, not within a
//! step: each task runs the whole time loop of `ROWS_PER_TASK` rows on one thread. Splitting
//! each step instead (a parallel gemm and a parallel element-wise pass) cost two fork-joins per
//! step, and on two cores a third of an `rnn` training epoch went to threads parking and waking.

use super::{f32_slice, matmul, sum_in_order, transpose, with_scratch, CResult};
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Batch rows per task. Fixed rather than per core, so that the weight gradients' summation
/// order, and with it every bit of a trained model, is the same on every machine.
const ROWS_PER_TASK: usize = 64;

/// One tanh RNN (`lstm: false`) or LSTM layer over a sequence, from a zero state.
pub struct Recurrence {
    pub lstm: bool,
}

#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    steps: usize,
    /// Features of one step's input.
    input: usize,
    hidden: usize,
    /// gates * hidden: the width of a step's gates.
    rows: usize,
}

impl Dims {
    /// input + hidden: a step's input and the previous state side by side, as `[x_t | h_{t-1}]`
    /// and `[W_ih | W_hh]` hold them.
    fn width(&self) -> usize {
        self.input + self.hidden
    }

    /// Values in one task's share of a `[batch, steps, features]` tensor (at least 1: rayon's
    /// chunks must not be empty).
    fn task_len(&self, features: usize) -> usize {
        (ROWS_PER_TASK * self.steps * features).max(1)
    }

    /// [`run_into`]'s scratch: the gates `[batch, rows]`, the LSTM's cell state
    /// `[batch, hidden]` and `[x_t | h_{t-1}]` `[batch, width]`.
    fn forward_scratch(&self, lstm: bool) -> [usize; 3] {
        [
            self.batch * self.rows,
            if lstm { self.batch * self.hidden } else { 0 },
            self.batch * self.width(),
        ]
    }

    /// The dims of the task whose share of the input is `x`.
    fn of_task(&self, x: &[f32]) -> Dims {
        Dims {
            batch: x.len() / (self.steps * self.input).max(1),
            ..*self
        }
    }

    /// Columns of `[W_ih | W_hh]` step `t`'s product needs: the first step starts from a zero
    /// state, so it takes the input's alone.
    fn product_width(&self, t: usize) -> usize {
        if t > 0 {
            self.width()
        } else {
            self.input
        }
    }
}

fn dims(lstm: bool, x: &Layout, w: &Layout) -> CResult<Dims> {
    let (batch, steps, input) = x.shape().dims3()?;
    let (rows, width) = w.shape().dims2()?;
    let gates = if lstm { 4 } else { 1 };
    let hidden = rows / gates;
    if input == 0 || hidden == 0 || rows != gates * hidden || width != input + hidden {
        candle_core::bail!(
            "recurrence: input [{batch}, {steps}, {input}] does not fit [W_ih | W_hh] \
             [{rows}, {width}] with {gates} gate(s)"
        );
    }
    Ok(Dims {
        batch,
        steps,
        input,
        hidden,
        rows,
    })
}

/// e^x to about 1 ulp (Cephes' `expf`: a Cody-Waite reduction by ln 2 and a degree-6
/// polynomial), written without branches or calls so that the loops below vectorise: libm's
/// scalar `expf` and `tanhf` were most of an LSTM step.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting it rounds to nearest
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from n's bits rather than a float-to-int cast, whose saturation kept the loops
    // scalar: n + 127 + ROUND holds n + 127 (1..=254) in its low mantissa bits, and the shift
    // moves them into the exponent. Bit for bit what `(n as i32 + 127) << 23` gave.
    e * f32::from_bits((n + (127.0 + ROUND)).to_bits() << 23)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh x = 1 - 2 / (e^2x + 1), exact at the saturated ends.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// The forward pass, time-major: `states[t]` is `[batch, hidden]`; with `lstm`, `cells[t]` the
/// cell state and `acts[t]` the gate activations i, f, g, o `[batch, 4 * hidden]`.
struct Trace {
    states: Vec<f32>,
    cells: Vec<f32>,
    acts: Vec<f32>,
}

simd_dispatch! {
    /// The forward pass over a run of batch rows, with the trace the backward needs.
    fn run = run_rows(
        lstm: bool,
        d: &Dims,
        x: &[f32],
        w_t: &[f32],
        bias: &[f32],
    ) -> Trace
}

#[inline(always)]
fn run_rows(lstm: bool, d: &Dims, x: &[f32], w_t: &[f32], bias: &[f32]) -> Trace {
    let Dims {
        batch,
        steps,
        hidden: h,
        rows,
        ..
    } = *d;
    let mut states = vec![0f32; steps * batch * h];
    let mut cells = vec![0f32; if lstm { steps * batch * h } else { 0 }];
    let mut acts = vec![0f32; if lstm { steps * batch * rows } else { 0 }];
    let mut gates = vec![0f32; batch * rows];
    let mut xh = vec![0f32; batch * d.width()];
    for t in 0..steps {
        let (before, now) = states.split_at_mut(t * batch * h);
        let prev = (t > 0).then(|| &before[(t - 1) * batch * h..][..batch * h]);
        load_bias(&mut gates, bias, d);
        load_inputs(&mut xh, x, prev, d, t);
        product(d, t, &mut gates, &xh, w_t);
        let state = &mut now[..batch * h];
        if lstm {
            let (cells_before, cells_now) = cells.split_at_mut(t * batch * h);
            let cell = &mut cells_now[..batch * h];
            if t > 0 {
                cell.copy_from_slice(&cells_before[(t - 1) * batch * h..][..batch * h]);
            }
            for b in 0..batch {
                let g = &mut gates[b * rows..][..rows];
                let s = &mut state[b * h..][..h];
                lstm_row(h, g, t > 0, &mut cell[b * h..][..h], s);
            }
            acts[t * batch * rows..][..batch * rows].copy_from_slice(&gates);
        } else {
            for (s, &g) in state.iter_mut().zip(&gates) {
                *s = tanh(g);
            }
        }
    }
    Trace {
        states,
        cells,
        acts,
    }
}

simd_dispatch! {
    /// The forward pass over a run of batch rows, written straight into their share of the
    /// op's output, `[batch rows, steps, hidden]`.
    fn run_into = run_rows_into(
        lstm: bool,
        d: &Dims,
        x: &[f32],
        w_t: &[f32],
        bias: &[f32],
        scratch: [&mut [f32]; 3],
        out: &mut [f32],
    ) -> ()
}

/// [`run_rows`] without the trace the backward needs, for the forward op: the LSTM's cell state
/// and `[x_t | h_{t-1}]` live in per-thread scratch (the cell updated in place, each new state
/// written where the next step's product reads it), and each step's state is copied straight
/// to its place in `out`. No buffers of every step, no transposing pass after. The arithmetic is
/// [`run_rows`]'s, value for value, so both give the same bits.
#[inline(always)]
fn run_rows_into(
    lstm: bool,
    d: &Dims,
    x: &[f32],
    w_t: &[f32],
    bias: &[f32],
    [gates, cell, xh]: [&mut [f32]; 3],
    out: &mut [f32],
) {
    let Dims {
        batch,
        steps,
        input,
        hidden: h,
        rows,
    } = *d;
    let width = d.width();
    for t in 0..steps {
        load_bias(gates, bias, d);
        // The previous state is already in place: the last step wrote it there.
        load_inputs(xh, x, None, d, t);
        product(d, t, gates, xh, w_t);
        for b in 0..batch {
            let g = &mut gates[b * rows..][..rows];
            let s = &mut xh[b * width + input..][..h];
            if lstm {
                lstm_row(h, g, t > 0, &mut cell[b * h..][..h], s);
            } else {
                for (s, &g) in s.iter_mut().zip(g.iter()) {
                    *s = tanh(g);
                }
            }
            out[(b * steps + t) * h..][..h].copy_from_slice(s);
        }
    }
}

/// Starts a step's gates `[batch, rows]` at the biases.
#[inline(always)]
fn load_bias(gates: &mut [f32], bias: &[f32], d: &Dims) {
    for b in 0..d.batch {
        gates[b * d.rows..][..d.rows].copy_from_slice(&bias[..d.rows]);
    }
}

/// Fills `[x_t | h_{t-1}]` `[batch, width]` with step `t`'s input and, when given, the previous
/// state `[batch, hidden]`.
#[inline(always)]
fn load_inputs(xh: &mut [f32], x: &[f32], prev: Option<&[f32]>, d: &Dims, t: usize) {
    let Dims {
        batch,
        steps,
        input,
        hidden: h,
        ..
    } = *d;
    let width = d.width();
    for b in 0..batch {
        let row = &mut xh[b * width..][..width];
        row[..input].copy_from_slice(&x[(b * steps + t) * input..][..input]);
        if let Some(prev) = prev {
            row[input..].copy_from_slice(&prev[b * h..][..h]);
        }
    }
}

/// gates += [x_t | h_{t-1}] [W_ih | W_hh]^T, the state's columns from the second step on.
#[inline(always)]
fn product(d: &Dims, t: usize, gates: &mut [f32], xh: &[f32], w_t: &[f32]) {
    matmul(
        (d.batch, d.rows, d.product_width(t)),
        gates,
        (d.rows, 1),
        true,
        xh,
        (d.width(), 1),
        w_t,
        (d.rows, 1),
    );
}

/// One LSTM step of one batch row: the gates `g` (`[4 * h]`) become their activations in place,
/// the cell `c` is updated in place (from zero when `carry` is false: the first step) and the
/// state `s` is written.
#[inline(always)]
fn lstm_row(h: usize, g: &mut [f32], carry: bool, c: &mut [f32], s: &mut [f32]) {
    let (ifg, o) = g.split_at_mut(3 * h);
    let (i_f, cand) = ifg.split_at_mut(2 * h);
    for v in i_f.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in o.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in cand.iter_mut() {
        *v = tanh(*v);
    }
    let (i, f) = i_f.split_at(h);
    let (i, f, cand, o, c, s) = (
        &i[..h],
        &f[..h],
        &cand[..h],
        &o[..h],
        &mut c[..h],
        &mut s[..h],
    );
    if carry {
        for u in 0..h {
            c[u] = f[u] * c[u] + i[u] * cand[u];
        }
    } else {
        for u in 0..h {
            c[u] = i[u] * cand[u];
        }
    }
    for u in 0..h {
        s[u] = o[u] * tanh(c[u]);
    }
}

impl CustomOp3 for Recurrence {
    fn name(&self) -> &'static str {
        "wna-recurrence"
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
        let d = dims(self.lstm, xl, wl)?;
        let x = f32_slice(xs, xl, "recurrence")?;
        // `[W_ih | W_hh]^T`, `[width, rows]`, made once per op: as the right-hand side of each
        // step's product it is column-major to the matrix kernel, which then packs it with
        // straight copies instead of a transposing gather every step (8% of an LSTM's
        // white-noise run).
        let w_t = transpose(f32_slice(ws, wl, "recurrence")?, d.rows, d.width());
        let bias = f32_slice(bs, bl, "recurrence")?;
        if bias.len() != d.rows {
            candle_core::bail!("recurrence: {} biases for {} gates", bias.len(), d.rows);
        }
        let (batch, steps, h) = (d.batch, d.steps, d.hidden);
        let mut out = vec![0f32; batch * steps * h];
        out.par_chunks_mut(d.task_len(h))
            .zip(x.par_chunks(d.task_len(d.input)))
            .for_each(|(out, x)| {
                let task = d.of_task(x);
                // The scratch is taken here, outside the SIMD builds: a closure inside them
                // would be compiled without the target features.
                with_scratch(task.forward_scratch(self.lstm), |scratch| {
                    run_into(self.lstm, &task, x, &w_t, bias, scratch, out)
                });
            });
        Ok((CpuStorage::F32(out), Shape::from((batch, steps, h))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The gradient op recomputes the forward, so it takes the biases too (a few hundred
        // values, carried by the op).
        let op = RecurrenceGrad {
            lstm: self.lstm,
            bias: bias.to_vec1::<f32>()?,
        };
        let all = x.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let (n, n_w) = (x.elem_count(), w.elem_count());
        Ok((
            Some(all.narrow(0, 0, n)?.reshape(x.shape())?),
            Some(all.narrow(0, n, n_w)?.reshape(w.shape())?),
            Some(all.narrow(0, n + n_w, bias.elem_count())?),
        ))
    }
}

/// Backward through time: the gradients of the input, of `[W_ih | W_hh]` and of the biases,
/// side by side in one flat tensor.
struct RecurrenceGrad {
    lstm: bool,
    /// `b_ih + b_hh`, as the forward added them.
    bias: Vec<f32>,
}

impl CustomOp3 for RecurrenceGrad {
    fn name(&self) -> &'static str {
        "wna-recurrence-grad"
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
        let d = dims(self.lstm, xl, wl)?;
        let x = f32_slice(xs, xl, "recurrence grad")?;
        let w = f32_slice(ws, wl, "recurrence grad")?;
        let w_t = transpose(w, d.rows, d.width()); // as in the forward
        let grad = f32_slice(gs, gl, "recurrence grad")?;
        if self.bias.len() != d.rows {
            candle_core::bail!(
                "recurrence grad: {} biases for {} gates",
                self.bias.len(),
                d.rows
            );
        }
        let mut d_x = vec![0f32; x.len()];
        let partials: Vec<Vec<f32>> = d_x
            .par_chunks_mut(d.task_len(d.input))
            .zip(x.par_chunks(d.task_len(d.input)))
            .zip(grad.par_chunks(d.task_len(d.hidden)))
            .map(|((d_x, x), grad)| backward_rows(self, &d.of_task(x), x, w, &w_t, grad, d_x))
            .collect();
        let mut out = d_x;
        out.extend(sum_in_order(partials));
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

simd_dispatch! {
    /// Backward through time over a run of batch rows: writes their input's gradient and
    /// returns their share of the weight and bias gradients, `[rows * width + rows]`.
    fn backward_rows = backward_through_time(
        op: &RecurrenceGrad,
        d: &Dims,
        x: &[f32],
        w: &[f32],
        w_t: &[f32],
        grad: &[f32],
        d_x: &mut [f32],
    ) -> Vec<f32>
}

#[inline(always)]
fn backward_through_time(
    op: &RecurrenceGrad,
    d: &Dims,
    x: &[f32],
    w: &[f32],
    w_t: &[f32],
    grad: &[f32],
    d_x: &mut [f32],
) -> Vec<f32> {
    let Dims {
        batch,
        steps,
        input,
        hidden: h,
        rows,
    } = *d;
    let width = d.width();
    let trace = run(op.lstm, d, x, w_t, &op.bias);
    let mut weights = vec![0f32; rows * width + rows];
    let (d_w, d_bias) = weights.split_at_mut(rows * width);
    let mut dh_next = vec![0f32; batch * h];
    let mut dc_next = vec![0f32; if op.lstm { batch * h } else { 0 }];
    let mut d_gates = vec![0f32; batch * rows];
    let mut xh = vec![0f32; batch * width];
    let mut d_xh = vec![0f32; batch * width];
    // The cell state before the first step.
    let no_cell = vec![0f32; h];
    for t in (0..steps).rev() {
        let state = &trace.states[t * batch * h..][..batch * h];
        if op.lstm {
            let cell = &trace.cells[t * batch * h..][..batch * h];
            let c_prev = (t > 0).then(|| &trace.cells[(t - 1) * batch * h..][..batch * h]);
            let act = &trace.acts[t * batch * rows..][..batch * rows];
            // Plain `for` loops, as in `lstm_row`, and every operand a slice of exactly h,
            // so the loop vectorises in the SIMD builds.
            for b in 0..batch {
                let dg = &mut d_gates[b * rows..][..rows];
                let dc_row = &mut dc_next[b * h..][..h];
                let a = &act[b * rows..][..rows];
                let (a_i, a_f, a_g, a_o) = (&a[..h], &a[h..2 * h], &a[2 * h..3 * h], &a[3 * h..]);
                let (dg_i, rest) = dg.split_at_mut(h);
                let (dg_f, rest) = rest.split_at_mut(h);
                let (dg_g, dg_o) = rest.split_at_mut(h);
                let g_out = &grad[(b * steps + t) * h..][..h];
                let dh_in = &dh_next[b * h..][..h];
                let cell_b = &cell[b * h..][..h];
                let before_b = c_prev.map_or(&no_cell[..], |p| &p[b * h..][..h]);
                for u in 0..h {
                    let dh = g_out[u] + dh_in[u];
                    let (i, f, g, o) = (a_i[u], a_f[u], a_g[u], a_o[u]);
                    let tc = tanh(cell_b[u]);
                    let dc = dc_row[u] + dh * o * (1.0 - tc * tc);
                    dg_i[u] = dc * g * i * (1.0 - i);
                    dg_f[u] = dc * before_b[u] * f * (1.0 - f);
                    dg_g[u] = dc * i * (1.0 - g * g);
                    dg_o[u] = dh * tc * o * (1.0 - o);
                    dc_row[u] = dc * f;
                }
            }
        } else {
            for b in 0..batch {
                let dg = &mut d_gates[b * rows..][..h];
                let g_out = &grad[(b * steps + t) * h..][..h];
                let dh_in = &dh_next[b * h..][..h];
                let s = &state[b * h..][..h];
                for u in 0..h {
                    dg[u] = (g_out[u] + dh_in[u]) * (1.0 - s[u] * s[u]);
                }
            }
        }
        for b in 0..batch {
            let dg = &d_gates[b * rows..][..rows];
            for u in 0..rows {
                d_bias[u] += dg[u];
            }
        }
        let k = d.product_width(t);
        // [dx_t | dh_{t-1}] = dG_t [W_ih | W_hh]
        matmul(
            (batch, k, rows),
            &mut d_xh,
            (width, 1),
            false,
            &d_gates,
            (rows, 1),
            w,
            (width, 1),
        );
        let prev = (t > 0).then(|| &trace.states[(t - 1) * batch * h..][..batch * h]);
        for b in 0..batch {
            let row = &d_xh[b * width..][..width];
            d_x[(b * steps + t) * input..][..input].copy_from_slice(&row[..input]);
            if prev.is_some() {
                dh_next[b * h..][..h].copy_from_slice(&row[input..]);
            }
        }
        // [dW_ih | dW_hh] += dG_t^T [x_t | h_{t-1}]
        load_inputs(&mut xh, x, prev, d, t);
        matmul(
            (rows, k, batch),
            d_w,
            (width, 1),
            true,
            &d_gates,
            (1, rows),
            &xh,
            (width, 1),
        );
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f32 in [-100, 100] in steps of about 2^-10 (the clamped ends included), and NaN.
    #[test]
    fn exp_builds_two_to_the_n_bit_for_bit_as_the_cast_did() {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const ROUND: f32 = 12_582_912.0;
        let mut x = -100f32;
        while x <= 100.0 {
            let c = x.clamp(-87.0, 88.0);
            let n = (c * LOG2E + ROUND) - ROUND;
            let cast = f32::from_bits(((n as i32 + 127) << 23) as u32);
            let bits = f32::from_bits((n + (127.0 + ROUND)).to_bits() << 23);
            assert_eq!(cast.to_bits(), bits.to_bits(), "2^{n} at x = {x}");
            assert!(exp(x).is_finite() && exp(x) > 0.0, "exp({x})");
            x += 1.0 / 1024.0;
        }
        assert!(exp(f32::NAN).is_nan(), "a NaN gate must stay NaN");
        assert!((exp(1.0) - std::f32::consts::E).abs() < 1e-6);
    }
}
