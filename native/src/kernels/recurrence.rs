//! The time loop of one recurrent layer (tanh RNN or LSTM) as one CPU op, forward and backward
//! through time. candle's own ops took about 15 allocating, mostly strided passes per step, which
//! made `rnn` and `lstm` 10x slower than PyTorch; here each step is one gemm into a gates buffer
//! and one fused element-wise pass over the batch rows, in parallel.
//!
//! The op takes every step's input share of the gates, `x W_ih^T` as
//! `[batch, steps, gates * hidden]` (one matmul outside, whose gradients candle handles),
//! `W_hh` `[gates * hidden, hidden]` and the summed biases `b_ih + b_hh` `[gates * hidden]`,
//! added here rather than in a pass of their own; it gives every step's state
//! `[batch, steps, hidden]`. The backward recomputes the forward trace rather than storing it
//! between the passes.

use super::{f32_slice, strided_gemm, CResult};
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

const ALL_CORES: gemm::Parallelism = gemm::Parallelism::Rayon(0);

/// The time loop of a tanh RNN (`lstm: false`) or an LSTM layer.
pub struct Recurrence {
    pub lstm: bool,
}

struct Dims {
    batch: usize,
    steps: usize,
    hidden: usize,
    /// gates * hidden: the width of a step's gates.
    rows: usize,
}

fn dims(lstm: bool, inputs: &Layout, w_hh: &Layout) -> CResult<Dims> {
    let (batch, steps, rows) = inputs.shape().dims3()?;
    let (w_rows, hidden) = w_hh.shape().dims2()?;
    let gates = if lstm { 4 } else { 1 };
    if w_rows != rows || rows != gates * hidden {
        candle_core::bail!(
            "recurrence: gates [{batch}, {steps}, {rows}] do not fit W_hh [{w_rows}, {hidden}]"
        );
    }
    Ok(Dims {
        batch,
        steps,
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
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
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

fn run(lstm: bool, d: &Dims, inputs: &[f32], w_hh: &[f32], bias: &[f32], keep_acts: bool) -> Trace {
    let Dims {
        batch,
        steps,
        hidden: h,
        rows,
    } = *d;
    let mut states = vec![0f32; steps * batch * h];
    let mut cells = if lstm {
        vec![0f32; steps * batch * h]
    } else {
        Vec::new()
    };
    let mut acts = if keep_acts && lstm {
        vec![0f32; steps * batch * rows]
    } else {
        Vec::new()
    };
    let mut gates = vec![0f32; batch * rows];
    for t in 0..steps {
        for (b, row) in gates.chunks_mut(rows).enumerate() {
            let input = &inputs[(b * steps + t) * rows..][..rows];
            row.iter_mut()
                .zip(input.iter().zip(bias))
                .for_each(|(g, (x, b))| *g = x + b);
        }
        let (before, now) = states.split_at_mut(t * batch * h);
        if t > 0 {
            // gates += h_{t-1} W_hh^T
            let prev = &before[(t - 1) * batch * h..];
            strided_gemm(
                (batch, rows, h),
                &mut gates,
                (rows, 1),
                true,
                prev,
                (h, 1),
                w_hh,
                (1, h),
                ALL_CORES,
            );
        }
        let state = &mut now[..batch * h];
        if lstm {
            let (cells_before, cells_now) = cells.split_at_mut(t * batch * h);
            let c_prev = (t > 0).then(|| &cells_before[(t - 1) * batch * h..]);
            let cell = &mut cells_now[..batch * h];
            let act = if keep_acts {
                Some(&mut acts[t * batch * rows..][..batch * rows])
            } else {
                None
            };
            lstm_step(h, &mut gates, c_prev, cell, state);
            if let Some(act) = act {
                act.copy_from_slice(&gates);
            }
        } else {
            state
                .par_chunks_mut(h)
                .zip(gates.par_chunks(rows))
                .for_each(|(s, g)| s.iter_mut().zip(g).for_each(|(s, &g)| *s = tanh(g)));
        }
    }
    Trace {
        states,
        cells,
        acts,
    }
}

/// One LSTM step over the batch rows: the gates become their activations in place, and the
/// cell and the state are written.
fn lstm_step(
    h: usize,
    gates: &mut [f32],
    c_prev: Option<&[f32]>,
    cell: &mut [f32],
    state: &mut [f32],
) {
    gates
        .par_chunks_mut(4 * h)
        .zip(cell.par_chunks_mut(h))
        .zip(state.par_chunks_mut(h))
        .enumerate()
        .for_each(|(b, ((g, c), s))| {
            // Activations in place, each gate a plain map over its slice (vectorised).
            let (ifg, o) = g.split_at_mut(3 * h);
            let (i_f, cand) = ifg.split_at_mut(2 * h);
            i_f.iter_mut()
                .chain(o.iter_mut())
                .for_each(|v| *v = sigmoid(*v));
            cand.iter_mut().for_each(|v| *v = tanh(*v));
            let (i, f) = i_f.split_at(h);
            match c_prev {
                Some(p) => {
                    let p = &p[b * h..][..h];
                    for u in 0..h {
                        c[u] = f[u] * p[u] + i[u] * cand[u];
                    }
                }
                None => {
                    for u in 0..h {
                        c[u] = i[u] * cand[u];
                    }
                }
            }
            for u in 0..h {
                s[u] = o[u] * tanh(c[u]);
            }
        });
}

impl CustomOp3 for Recurrence {
    fn name(&self) -> &'static str {
        "wna-recurrence"
    }

    fn cpu_fwd(
        &self,
        is: &CpuStorage,
        il: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let d = dims(self.lstm, il, wl)?;
        let inputs = f32_slice(is, il, "recurrence")?;
        let w_hh = f32_slice(ws, wl, "recurrence")?;
        let bias = f32_slice(bs, bl, "recurrence")?;
        if bias.len() != d.rows {
            candle_core::bail!("recurrence: {} biases for {} gates", bias.len(), d.rows);
        }
        let trace = run(self.lstm, &d, inputs, w_hh, bias, false);
        // Time-major to [batch, steps, hidden].
        let mut out = vec![0f32; d.batch * d.steps * d.hidden];
        for (t, step) in trace.states.chunks(d.batch * d.hidden).enumerate() {
            for (b, s) in step.chunks(d.hidden).enumerate() {
                out[(b * d.steps + t) * d.hidden..][..d.hidden].copy_from_slice(s);
            }
        }
        Ok((
            CpuStorage::F32(out),
            Shape::from((d.batch, d.steps, d.hidden)),
        ))
    }

    fn bwd(
        &self,
        inputs: &Tensor,
        w_hh: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The gradient op recomputes the forward, so it takes the biases too (a few hundred
        // values, carried by the op); the bias gradient is the gates' gradient summed over batch
        // and steps.
        let op = RecurrenceGrad {
            lstm: self.lstm,
            bias: bias.to_vec1::<f32>()?,
        };
        let all = inputs.apply_op3_no_bwd(w_hh, &grad.contiguous()?, &op)?;
        let n = inputs.elem_count();
        let d_inputs = all.narrow(0, 0, n)?.reshape(inputs.shape())?;
        let d_bias = d_inputs.sum((0, 1))?;
        Ok((
            Some(d_inputs),
            Some(all.narrow(0, n, w_hh.elem_count())?.reshape(w_hh.shape())?),
            Some(d_bias),
        ))
    }
}

/// Backward through time: the gradients of the gates' input share and of `W_hh`, side by side
/// in one flat tensor.
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
        is: &CpuStorage,
        il: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let d = dims(self.lstm, il, wl)?;
        let inputs = f32_slice(is, il, "recurrence grad")?;
        let w_hh = f32_slice(ws, wl, "recurrence grad")?;
        let grad = f32_slice(gs, gl, "recurrence grad")?;
        let Dims {
            batch,
            steps,
            hidden: h,
            rows,
        } = d;
        if self.bias.len() != rows {
            candle_core::bail!(
                "recurrence grad: {} biases for {rows} gates",
                self.bias.len()
            );
        }
        let trace = run(self.lstm, &d, inputs, w_hh, &self.bias, true);
        let n_inputs = batch * steps * rows;
        let mut out = vec![0f32; n_inputs + rows * h];
        let (d_inputs, d_w_hh) = out.split_at_mut(n_inputs);
        let mut dh_next = vec![0f32; batch * h];
        let mut dc_next = vec![0f32; if self.lstm { batch * h } else { 0 }];
        let mut d_gates = vec![0f32; batch * rows];
        for t in (0..steps).rev() {
            let state = &trace.states[t * batch * h..][..batch * h];
            if self.lstm {
                let cell = &trace.cells[t * batch * h..][..batch * h];
                let c_prev = (t > 0).then(|| &trace.cells[(t - 1) * batch * h..][..batch * h]);
                let act = &trace.acts[t * batch * rows..][..batch * rows];
                d_gates
                    .par_chunks_mut(rows)
                    .zip(dc_next.par_chunks_mut(h))
                    .enumerate()
                    .for_each(|(b, (dg, dc_row))| {
                        let a = &act[b * rows..][..rows];
                        for u in 0..h {
                            let dh = grad[(b * steps + t) * h + u] + dh_next[b * h + u];
                            let (i, f, g, o) = (a[u], a[h + u], a[2 * h + u], a[3 * h + u]);
                            let tc = tanh(cell[b * h + u]);
                            let dc = dc_row[u] + dh * o * (1.0 - tc * tc);
                            let before = c_prev.map_or(0.0, |p| p[b * h + u]);
                            dg[u] = dc * g * i * (1.0 - i);
                            dg[h + u] = dc * before * f * (1.0 - f);
                            dg[2 * h + u] = dc * i * (1.0 - g * g);
                            dg[3 * h + u] = dh * tc * o * (1.0 - o);
                            dc_row[u] = dc * f;
                        }
                    });
            } else {
                d_gates
                    .par_chunks_mut(rows)
                    .enumerate()
                    .for_each(|(b, dg)| {
                        for u in 0..h {
                            let dh = grad[(b * steps + t) * h + u] + dh_next[b * h + u];
                            let s = state[b * h + u];
                            dg[u] = dh * (1.0 - s * s);
                        }
                    });
            }
            for (b, dg) in d_gates.chunks(rows).enumerate() {
                d_inputs[(b * steps + t) * rows..][..rows].copy_from_slice(dg);
            }
            if t > 0 {
                let prev = &trace.states[(t - 1) * batch * h..][..batch * h];
                // dh_{t-1} = dG_t W_hh
                strided_gemm(
                    (batch, h, rows),
                    &mut dh_next,
                    (h, 1),
                    false,
                    &d_gates,
                    (rows, 1),
                    w_hh,
                    (h, 1),
                    ALL_CORES,
                );
                // dW_hh += dG_t^T h_{t-1}
                strided_gemm(
                    (rows, h, batch),
                    d_w_hh,
                    (h, 1),
                    true,
                    &d_gates,
                    (1, rows),
                    prev,
                    (h, 1),
                    ALL_CORES,
                );
            }
        }
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}
