//! `mlp`: 784-1000-classes with ReLU.

use super::{LayerInfo, Net, Tap};
use crate::error::Result;
use crate::layers::Linear;
use candle_core::Tensor;
use candle_nn::VarBuilder;

pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    classes: usize,
}

impl Mlp {
    pub fn new(vb: VarBuilder, classes: usize) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(784, 1000, vb.pp("fc1"))?,
            fc2: Linear::new(1000, classes, vb.pp("fc2"))?,
            classes,
        })
    }
}

impl Net for Mlp {
    fn forward_tapped(&self, x: &Tensor, _train: bool, tap: Tap) -> Result<Tensor> {
        let x = self.fc1.forward(&x.flatten_from(1)?)?.relu()?;
        let x = tap("fc1", x)?;
        tap("logits", self.fc2.forward(&x)?)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![
            LayerInfo::fc("fc1", 1000),
            LayerInfo::fc("logits", self.classes),
        ]
    }
}
