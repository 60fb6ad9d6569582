//! `smaller`: two 3x3 conv blocks with batch norm and max-pooling, then a BN'd hidden layer.

use super::{LayerInfo, Net, Rf, Tap};
use crate::error::Result;
use crate::layers::{max_pool2, BatchNorm, Conv2d, Linear};
use candle_core::Tensor;
use candle_nn::VarBuilder;

pub const HIDDEN: usize = 256;

pub struct Smaller {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    fc1: Linear,
    bn3: BatchNorm,
    fc2: Linear,
    classes: usize,
}

impl Smaller {
    pub fn new(vb: VarBuilder, classes: usize) -> Result<Self> {
        Ok(Self {
            conv1: Conv2d::new(1, 32, 3, 1, 0, true, vb.pp("conv1"))?,
            bn1: BatchNorm::new(32, vb.pp("bn1"))?,
            conv2: Conv2d::new(32, 64, 3, 1, 0, true, vb.pp("conv2"))?,
            bn2: BatchNorm::new(64, vb.pp("bn2"))?,
            fc1: Linear::new(64 * 5 * 5, HIDDEN, vb.pp("fc1"))?,
            bn3: BatchNorm::new(HIDDEN, vb.pp("bn3"))?,
            fc2: Linear::new(HIDDEN, classes, vb.pp("fc2"))?,
            classes,
        })
    }
}

impl Net for Smaller {
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap) -> Result<Tensor> {
        let x = self
            .bn1
            .forward(&self.conv1.forward(x, train)?, train, true)?;
        let x = max_pool2(&tap("conv1", x)?)?;
        let x = self
            .bn2
            .forward(&self.conv2.forward(&x, train)?, train, true)?;
        let x = max_pool2(&tap("conv2", x)?)?.flatten_from(1)?;
        let x = self.bn3.forward(&self.fc1.forward(&x)?, train, true)?;
        let x = tap("fc1", x)?;
        tap("logits", self.fc2.forward(&x)?)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let conv1 = Rf::default().conv(3, 1, 0);
        let conv2 = conv1.conv(2, 2, 0).conv(3, 1, 0);
        vec![
            LayerInfo::conv("conv1", 32, 26, conv1),
            LayerInfo::conv("conv2", 64, 11, conv2),
            LayerInfo::fc("fc1", HIDDEN),
            LayerInfo::fc("logits", self.classes),
        ]
    }
}
