//! Stacked recurrent layers with PyTorch's semantics and parameter names (`nn.RNN` with tanh,
//! `nn.LSTM`): used by the `rnn` layer of a spec (an image read row by row) and by the confidence
//! study's meta-networks. Built from candle ops so autograd gives the gradients;
//! `native/tests/recurrent.rs` checks the forward pass and every gradient against direct loops.

use crate::error::Result;
use crate::kernels::Recurrence;
use candle_core::{DType, Tensor, D};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};

/// The recurrent cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`, PyTorch's `nn.RNN`.
    #[default]
    Tanh,
    /// PyTorch's `nn.LSTM`, gates in the order input, forget, cell, output.
    Lstm,
}

impl Cell {
    /// Rows of `weight_ih` per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            Self::Tanh => 1,
            Self::Lstm => 4,
        }
    }
}

/// One layer's weights in PyTorch's layout: `weight_ih_l{k}` is `[gates * hidden, input]`.
struct Layer {
    w_ih: Tensor,
    w_hh: Tensor,
    bias: Option<(Tensor, Tensor)>,
}

impl Layer {
    /// The input's share of every step's gates, `x W_ih^T`, in one product:
    /// `[batch, steps, gates * hidden]` (candle's path; the fused CPU op forms it step by step).
    fn input_share(&self, x: &Tensor) -> Result<Tensor> {
        let (b, steps, input) = x.dims3()?;
        let rows = self.w_ih.dim(0)?;
        let x = x.contiguous()?.reshape((b * steps, input))?;
        Ok(x.matmul(&self.w_ih.t()?)?.reshape((b, steps, rows))?)
    }
}

/// A stack of recurrent layers over a sequence, each starting from a zero state.
pub struct Recurrent {
    cell: Cell,
    hidden: usize,
    layers: Vec<Layer>,
}

impl Recurrent {
    /// Parameters `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` under `vb`,
    /// drawn (until a model seeds them) uniform in ±1/sqrt(hidden), as PyTorch does.
    pub fn new(
        cell: Cell,
        input: usize,
        hidden: usize,
        depth: usize,
        bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let rows = cell.gates() * hidden;
        let layers = (0..depth)
            .map(|k| -> Result<Layer> {
                let fan_in = if k == 0 { input } else { hidden };
                Ok(Layer {
                    w_ih: vb.get_with_hints((rows, fan_in), &format!("weight_ih_l{k}"), init)?,
                    w_hh: vb.get_with_hints((rows, hidden), &format!("weight_hh_l{k}"), init)?,
                    bias: if bias {
                        Some((
                            vb.get_with_hints(rows, &format!("bias_ih_l{k}"), init)?,
                            vb.get_with_hints(rows, &format!("bias_hh_l{k}"), init)?,
                        ))
                    } else {
                        None
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cell,
            hidden,
            layers,
        })
    }

    /// `x`: `[batch, steps, input]`; returns the top layer's state at every step,
    /// `[batch, steps, hidden]`. On the CPU in f32 the time loop is one fused op
    /// (`kernels::Recurrence`); elsewhere candle's ops run it.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let fused = x.device().is_cpu() && x.dtype() == DType::F32;
        self.forward_with(x, fused)
    }

    /// [`Self::forward`] through candle's ops alone: the reference the fused CPU op is tested
    /// against.
    pub fn forward_unfused(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, false)
    }

    fn forward_with(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            let rows = layer.w_hh.dim(0)?;
            let bias = match &layer.bias {
                Some((b_ih, b_hh)) => Some((b_ih + b_hh)?),
                None => None,
            };
            x = if fused {
                let bias = match bias {
                    Some(b) => b,
                    None => Tensor::zeros(rows, x.dtype(), x.device())?,
                };
                // Both weights side by side: each step is one product with [x_t | h_{t-1}].
                let weights = Tensor::cat(&[&layer.w_ih, &layer.w_hh], 1)?;
                let lstm = self.cell == Cell::Lstm;
                x.contiguous()?
                    .apply_op3(&weights, &bias, Recurrence { lstm })?
            } else {
                let inputs = layer.input_share(&x)?;
                let inputs = match bias {
                    Some(b) => inputs.broadcast_add(&b)?,
                    None => inputs,
                };
                self.time_loop(layer, &inputs)?
            };
        }
        Ok(x)
    }

    /// The top layer's state after the last step, `[batch, hidden]`.
    pub fn forward_last(&self, x: &Tensor) -> Result<Tensor> {
        let steps = x.dim(1)?;
        Ok(self.forward(x)?.narrow(1, steps - 1, 1)?.squeeze(1)?)
    }

    /// The time loop in candle's ops: `inputs` is every step's input share of the gates.
    fn time_loop(&self, layer: &Layer, inputs: &Tensor) -> Result<Tensor> {
        let (_, steps, _) = inputs.dims3()?;
        let h = self.hidden;
        let mut state: Option<(Tensor, Tensor)> = None; // (h, c); c is unused by tanh cells
        let mut out = Vec::with_capacity(steps);
        for t in 0..steps {
            let mut gates = inputs.narrow(1, t, 1)?.squeeze(1)?;
            if let Some((h_prev, _)) = &state {
                gates = (gates + h_prev.matmul(&layer.w_hh.t()?)?)?;
            }
            let next = match self.cell {
                Cell::Tanh => {
                    let h_new = gates.tanh()?;
                    (h_new.clone(), h_new)
                }
                Cell::Lstm => {
                    let gate = |i: usize| gates.narrow(D::Minus1, i * h, h);
                    let i = candle_nn::ops::sigmoid(&gate(0)?)?;
                    let f = candle_nn::ops::sigmoid(&gate(1)?)?;
                    let g = gate(2)?.tanh()?;
                    let o = candle_nn::ops::sigmoid(&gate(3)?)?;
                    let c = match &state {
                        Some((_, c_prev)) => ((f * c_prev)? + (i * g)?)?,
                        None => (i * g)?,
                    };
                    ((o * c.tanh()?)?, c)
                }
            };
            out.push(next.0.clone());
            state = Some(next);
        }
        Ok(Tensor::stack(&out, 1)?)
    }
}

/// The bound of PyTorch's default initialisation for a recurrent parameter
/// (`<prefix>.{weight,bias}_{ih,hh}_l{k}`): 1/sqrt(hidden), where hidden is `weight_hh`'s width.
/// `None` for any other name.
pub fn init_bound(name: &str, shape_of: impl Fn(&str) -> Option<Vec<usize>>) -> Option<f32> {
    let (prefix, param) = name.rsplit_once('.').unwrap_or(("", name));
    let layer = ["weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"]
        .iter()
        .find_map(|p| param.strip_prefix(p))?;
    let w_hh = if prefix.is_empty() {
        format!("weight_hh_l{layer}")
    } else {
        format!("{prefix}.weight_hh_l{layer}")
    };
    let hidden = *shape_of(&w_hh)?.get(1)?;
    Some(1.0 / (hidden as f32).sqrt())
}
