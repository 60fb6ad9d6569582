//! The four initialisations of the confidence study's grid, as PyTorch defines them, drawn from
//! Philox so that a member's starting weights depend only on its seed and its init.

use super::lenet::{offsets, PARAMS};
use crate::philox::Philox;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// `xavier_uniform_`: U(±sqrt(6 / (fan_in + fan_out))), biases zero.
    XavierUniform,
    /// `normal_(0, 0.01)`, biases zero.
    Normal,
    /// `kaiming_uniform_` with its defaults (a = 0, fan_in): U(±sqrt(6 / fan_in)), biases zero.
    KaimingUniform,
    /// PyTorch's own `reset_parameters`: U(±1/sqrt(fan_in)) for weights and biases alike.
    Default,
}

impl Init {
    fn stream(self) -> u32 {
        0x1417_0000
            | match self {
                Self::XavierUniform => 0,
                Self::Normal => 1,
                Self::KaimingUniform => 2,
                Self::Default => 3,
            }
    }
}

/// A fresh parameter vector: one Philox stream per tensor, keyed by the seed and the init.
pub fn initial_params(init: Init, seed: u64) -> Vec<f32> {
    let (at, total) = offsets();
    let mut params = vec![0f32; total];
    let mut fan_in = 1;
    for (i, (_, shape)) in PARAMS.iter().enumerate() {
        let len: usize = shape.iter().product();
        let out = &mut params[at[i]..at[i] + len];
        let rng = Philox::new(seed, init.stream(), i as u64);
        let is_weight = shape.len() > 1;
        if is_weight {
            // [out, in, kh, kw] or [out, in]: fan_in = in * receptive field.
            fan_in = len / shape[0];
        }
        let fan_out = len / shape.get(1).copied().unwrap_or(1);
        let bound = match (init, is_weight) {
            (Init::Default, _) => 1.0 / (fan_in as f32).sqrt(),
            (_, false) => continue, // zero biases
            (Init::XavierUniform, true) => (6.0 / (fan_in + fan_out) as f32).sqrt(),
            (Init::KaimingUniform, true) => (6.0 / fan_in as f32).sqrt(),
            (Init::Normal, true) => {
                rng.fill_normal(out, 0.0, 0.01);
                continue;
            }
        };
        rng.fill_uniform(out);
        out.iter_mut().for_each(|v| *v = (*v * 2.0 - 1.0) * bound);
    }
    params
}
