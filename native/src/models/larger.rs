//! `larger`: a small ResNet (He et al., 2016) for 28x28 inputs — 7x7/2 stem, four stages of
//! basic blocks at widths 16/32/64/128 and sizes 14/14/7/7, global average pool, linear.

use super::{LayerInfo, Net, Rf, Tap};
use crate::error::Result;
use crate::layers::{BatchNorm, Conv2d, Linear};
use candle_core::Tensor;
use candle_nn::VarBuilder;

pub const WIDTHS: [usize; 4] = [16, 32, 64, 128];
pub const STRIDES: [usize; 4] = [1, 1, 2, 1];

fn conv(cin: usize, cout: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    Conv2d::new(cin, cout, k, stride, k / 2, false, vb)
}

struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    projection: Option<(Conv2d, BatchNorm)>,
}

impl Block {
    fn new(cin: usize, cout: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let projection = if cin != cout || stride != 1 {
            Some((
                conv(cin, cout, 1, stride, vb.pp("proj"))?,
                BatchNorm::new(cout, vb.pp("proj_bn"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv(cin, cout, 3, stride, vb.pp("conv1"))?,
            bn1: BatchNorm::new(cout, vb.pp("bn1"))?,
            conv2: conv(cout, cout, 3, 1, vb.pp("conv2"))?,
            bn2: BatchNorm::new(cout, vb.pp("bn2"))?,
            projection,
        })
    }

    fn forward(&self, x: &Tensor, train: bool, name: &str, tap: Tap) -> Result<Tensor> {
        let h = self
            .bn1
            .forward(&self.conv1.forward(x, train)?, train, true)?;
        let h = tap(&format!("{name}.conv1"), h)?;
        let h = self
            .bn2
            .forward(&self.conv2.forward(&h, train)?, train, false)?;
        let skip = match &self.projection {
            Some((c, bn)) => bn.forward(&c.forward(x, train)?, train, false)?,
            None => x.clone(),
        };
        tap(name, (h + skip)?.relu()?)
    }
}

pub struct Larger {
    stem: Conv2d,
    stem_bn: BatchNorm,
    stages: Vec<Vec<Block>>,
    fc: Linear,
    classes: usize,
}

impl Larger {
    pub fn new(vb: VarBuilder, classes: usize, blocks: [usize; 4]) -> Result<Self> {
        if blocks.iter().any(|&b| b == 0 || b > 16) {
            crate::bail!(
                InvalidArgument,
                "larger: blocks per stage must be 1..=16, got {blocks:?}"
            );
        }
        let mut cin = 16;
        let mut stages = Vec::new();
        for (s, &n) in blocks.iter().enumerate() {
            let vs = vb.pp(format!("stage{}", s + 1));
            let mut stage = Vec::new();
            for b in 0..n {
                let stride = if b == 0 { STRIDES[s] } else { 1 };
                stage.push(Block::new(cin, WIDTHS[s], stride, vs.pp(b.to_string()))?);
                cin = WIDTHS[s];
            }
            stages.push(stage);
        }
        Ok(Self {
            stem: Conv2d::new(1, 16, 7, 2, 3, true, vb.pp("stem"))?,
            stem_bn: BatchNorm::new(16, vb.pp("stem_bn"))?,
            stages,
            fc: Linear::new(128, classes, vb.pp("fc"))?,
            classes,
        })
    }
}

impl Net for Larger {
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap) -> Result<Tensor> {
        let x = self
            .stem_bn
            .forward(&self.stem.forward(x, train)?, train, true)?;
        let mut x = tap("stem", x)?;
        for (s, stage) in self.stages.iter().enumerate() {
            for (b, block) in stage.iter().enumerate() {
                x = block.forward(&x, train, &format!("stage{}.{b}", s + 1), tap)?;
            }
        }
        let pooled = x.mean((2, 3))?;
        tap("logits", self.fc.forward(&pooled)?)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut rf = Rf::default().conv(7, 2, 3);
        let mut size = 14;
        let mut out = vec![LayerInfo::conv("stem", 16, size, rf)];
        for (s, stage) in self.stages.iter().enumerate() {
            for b in 0..stage.len() {
                let stride = if b == 0 { STRIDES[s] } else { 1 };
                size /= stride;
                rf = rf.conv(3, stride, 1);
                let name = format!("stage{}.{b}", s + 1);
                out.push(LayerInfo::conv(
                    &format!("{name}.conv1"),
                    WIDTHS[s],
                    size,
                    rf,
                ));
                rf = rf.conv(3, 1, 1);
                out.push(LayerInfo::conv(&name, WIDTHS[s], size, rf));
            }
        }
        out.push(LayerInfo::fc("logits", self.classes));
        out
    }
}
