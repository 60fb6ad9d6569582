//! The networks: specs (`crate::spec`) compiled into layers with a tapped forward, and the
//! built-in specs.

pub mod builtin;
pub mod network;

use crate::error::Result;
use crate::spec::NetSpec;
use candle_core::Tensor;
use candle_nn::VarBuilder;

/// Called with each named layer's output; returns the tensor the network continues with, so one
/// hook serves both recording activations and microstimulation.
pub type Tap<'a> = &'a mut dyn FnMut(&str, Tensor) -> Result<Tensor>;

/// What an experiment needs to know about a tappable layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerInfo {
    pub name: String,
    /// "conv" (a `[channels, height, width]` map) or "fc" (`[channels]`).
    pub kind: &'static str,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Receptive field on the input: unit (y, x) sees rows `offset + y*stride ..+rf`.
    pub rf: usize,
    pub stride: usize,
    pub offset: isize,
}

impl LayerInfo {
    pub fn conv(name: &str, channels: usize, size: usize, rf: Rf) -> Self {
        Self {
            name: name.to_string(),
            kind: "conv",
            channels,
            height: size,
            width: size,
            rf: rf.size,
            stride: rf.jump,
            offset: rf.start,
        }
    }
    pub fn fc(name: &str, channels: usize) -> Self {
        Self {
            name: name.to_string(),
            kind: "fc",
            channels,
            height: 1,
            width: 1,
            rf: 28,
            stride: 1,
            offset: 0,
        }
    }
}

/// Receptive-field arithmetic along a network's main path.
#[derive(Debug, Clone, Copy)]
pub struct Rf {
    pub size: usize,
    pub jump: usize,
    pub start: isize,
}

impl Default for Rf {
    fn default() -> Self {
        Self {
            size: 1,
            jump: 1,
            start: 0,
        }
    }
}

impl Rf {
    pub fn conv(self, kernel: usize, stride: usize, pad: usize) -> Self {
        Self {
            size: self.size + (kernel - 1) * self.jump,
            jump: self.jump * stride,
            start: self.start - (pad * self.jump) as isize,
        }
    }
}

pub trait Net: Send + Sync {
    /// `x` is `[batch, 1, 28, 28]`, already normalised; returns logits `[batch, classes]`.
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap) -> Result<Tensor>;
    /// The tappable layers, in forward order; the last is always "logits".
    fn layers(&self) -> Vec<LayerInfo>;
    /// Names of parameters that dropout-style randomness needs per step (none by default).
    fn set_step_seed(&self, _seed: u64) {}
}

/// Compiles a spec into a network whose parameters live in `vb`.
pub fn build(spec: &NetSpec, vb: VarBuilder) -> Result<Box<dyn Net>> {
    Ok(Box::new(network::Network::new(spec, vb)?))
}

/// A forward pass that records nothing.
pub fn no_tap() -> impl FnMut(&str, Tensor) -> Result<Tensor> {
    |_, t| Ok(t)
}
