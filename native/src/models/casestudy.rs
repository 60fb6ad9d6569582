//! The MNIST case-study networks of the FGSM robustness study: N1/N2 (two 8x8/6x6 convs with
//! average pooling, dropout, FC 800-512-512) and N3 (one 5x5 conv, dropout, FC 12544-1024-512).
//! N1 and N2 share an architecture and differ in optimiser (Adam vs SGD with momentum).

use super::{LayerInfo, Net, Rf, Tap};
use crate::error::Result;
use crate::layers::{Conv2d, Linear};
use crate::philox::Philox;
use candle_core::Tensor;
use candle_nn::VarBuilder;
use std::sync::atomic::{AtomicU64, Ordering};

/// Inverted dropout whose mask comes from Philox keyed by the training step, so a seeded run
/// repeats exactly.
pub struct Dropout {
    p: f32,
    stream: u32,
    step_seed: AtomicU64,
}

impl Dropout {
    pub fn new(p: f32, stream: u32) -> Self {
        Self {
            p,
            stream,
            step_seed: AtomicU64::new(0),
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x.clone());
        }
        let rng = Philox::new(self.step_seed.load(Ordering::Relaxed), self.stream, 0);
        let mut mask = vec![0f32; x.elem_count()];
        rng.fill_uniform(&mut mask);
        let keep = 1.0 / (1.0 - self.p);
        for m in &mut mask {
            *m = if *m >= self.p { keep } else { 0.0 };
        }
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
        Ok((x * mask)?)
    }
}

fn padded(k: usize, pad: usize, cin: usize, cout: usize, vb: VarBuilder) -> Result<Conv2d> {
    Conv2d::new(cin, cout, k, 1, pad, true, vb)
}

pub struct N1 {
    conv1: Conv2d,
    conv2: Conv2d,
    dropout: Dropout,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    classes: usize,
}

impl N1 {
    pub fn new(vb: VarBuilder, classes: usize) -> Result<Self> {
        Ok(Self {
            conv1: padded(8, 2, 1, 16, vb.pp("conv1"))?,
            conv2: padded(6, 2, 16, 32, vb.pp("conv2"))?,
            dropout: Dropout::new(0.5, 1),
            fc1: Linear::new(800, 512, vb.pp("fc1"))?,
            fc2: Linear::new(512, 512, vb.pp("fc2"))?,
            fc3: Linear::new(512, classes, vb.pp("fc3"))?,
            classes,
        })
    }
}

impl Net for N1 {
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap) -> Result<Tensor> {
        let x = tap("conv1", self.conv1.forward(x, train)?.relu()?)?.avg_pool2d(2)?;
        let x = tap("conv2", self.conv2.forward(&x, train)?.relu()?)?.avg_pool2d(2)?;
        let x = self.dropout.forward(&x.flatten_from(1)?, train)?;
        let x = tap("fc1", self.fc1.forward(&x)?.relu()?)?;
        let x = tap("fc2", self.fc2.forward(&x)?.relu()?)?;
        tap("logits", self.fc3.forward(&x)?)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let conv1 = Rf::default().conv(8, 1, 2);
        let conv2 = conv1.conv(2, 2, 0).conv(6, 1, 2);
        vec![
            LayerInfo::conv("conv1", 16, 25, conv1),
            LayerInfo::conv("conv2", 32, 11, conv2),
            LayerInfo::fc("fc1", 512),
            LayerInfo::fc("fc2", 512),
            LayerInfo::fc("logits", self.classes),
        ]
    }

    fn set_step_seed(&self, seed: u64) {
        self.dropout.step_seed.store(seed, Ordering::Relaxed);
    }
}

pub struct N3 {
    conv1: Conv2d,
    dropout: Dropout,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    classes: usize,
}

impl N3 {
    pub fn new(vb: VarBuilder, classes: usize) -> Result<Self> {
        Ok(Self {
            conv1: padded(5, 2, 1, 16, vb.pp("conv1"))?,
            dropout: Dropout::new(0.5, 1),
            fc1: Linear::new(12544, 1024, vb.pp("fc1"))?,
            fc2: Linear::new(1024, 512, vb.pp("fc2"))?,
            fc3: Linear::new(512, classes, vb.pp("fc3"))?,
            classes,
        })
    }
}

impl Net for N3 {
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap) -> Result<Tensor> {
        let x = tap("conv1", self.conv1.forward(x, train)?.relu()?)?;
        let x = self.dropout.forward(&x.flatten_from(1)?, train)?;
        let x = tap("fc1", self.fc1.forward(&x)?.relu()?)?;
        let x = tap("fc2", self.fc2.forward(&x)?.relu()?)?;
        tap("logits", self.fc3.forward(&x)?)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![
            LayerInfo::conv("conv1", 16, 28, Rf::default().conv(5, 1, 2)),
            LayerInfo::fc("fc1", 1024),
            LayerInfo::fc("fc2", 512),
            LayerInfo::fc("logits", self.classes),
        ]
    }

    fn set_step_seed(&self, seed: u64) {
        self.dropout.step_seed.store(seed, Ordering::Relaxed);
    }
}
