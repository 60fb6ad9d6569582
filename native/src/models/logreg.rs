//! `logreg`: multinomial logistic regression on the 784 pixels.

use super::{LayerInfo, Net, Tap};
use crate::error::Result;
use crate::layers::Linear;
use candle_core::Tensor;
use candle_nn::VarBuilder;

pub struct LogReg {
    fc: Linear,
    classes: usize,
}

impl LogReg {
    pub fn new(vb: VarBuilder, classes: usize) -> Result<Self> {
        Ok(Self {
            fc: Linear::new(784, classes, vb.pp("fc"))?,
            classes,
        })
    }
}

impl Net for LogReg {
    fn forward_tapped(&self, x: &Tensor, _train: bool, tap: Tap) -> Result<Tensor> {
        tap("logits", self.fc.forward(&x.flatten_from(1)?)?)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo::fc("logits", self.classes)]
    }
}
