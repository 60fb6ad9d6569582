//! A spec compiled into layers: each step runs wna's layers (fast CPU kernels where they apply),
//! a batch norm followed by a ReLU runs as one fused kernel, and tapped outputs go to the hook.

use super::{LayerInfo, Net, Rf, Tap};
use crate::error::Result;
use crate::layers::{avg_pool, max_pool2, Activation, BatchNorm, Conv2d, Dropout, Linear};
use crate::recurrent::Recurrent;
use crate::spec::{sequence, LayerSpec, NetSpec};
use candle_core::Tensor;
use candle_nn::VarBuilder;

/// A ResNet basic block; the projection is there when the width or the stride changes.
struct Residual {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    projection: Option<(Conv2d, BatchNorm)>,
}

impl Residual {
    fn new(cin: usize, cout: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let projection = if cin != cout || stride != 1 {
            Some((
                Conv2d::new(cin, cout, 1, stride, 0, false, vb.pp("proj"))?,
                BatchNorm::new(cout, vb.pp("proj_bn"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: Conv2d::new(cin, cout, 3, stride, 1, false, vb.pp("conv1"))?,
            bn1: BatchNorm::new(cout, vb.pp("bn1"))?,
            conv2: Conv2d::new(cout, cout, 3, 1, 1, false, vb.pp("conv2"))?,
            bn2: BatchNorm::new(cout, vb.pp("bn2"))?,
            projection,
        })
    }

    /// `fuse`: no gradient is wanted, so each conv runs with its batch norm, the residual sum
    /// and the ReLUs fused in (see [`Network::forward_tapped`]).
    fn forward(
        &self,
        x: &Tensor,
        train: bool,
        fuse: bool,
        name: Option<&str>,
        tap: Tap,
    ) -> Result<Tensor> {
        if fuse {
            if let Some(y) = self.forward_fused(x, name, tap)? {
                return Ok(y);
            }
        }
        let h = self
            .bn1
            .forward(&self.conv1.forward(x, train)?, train, true)?;
        let h = match name {
            Some(n) => tap(&format!("{n}.conv1"), h)?,
            None => h,
        };
        let h = self
            .bn2
            .forward(&self.conv2.forward(&h, train)?, train, false)?;
        let skip = match &self.projection {
            Some((c, bn)) => bn.forward(&c.forward(x, train)?, train, false)?,
            None => x.clone(),
        };
        Ok((h + skip)?.relu()?)
    }

    /// The block in three fused convolutions (two where there is no projection): conv1 with bn1
    /// and its ReLU, the projection with its batch norm, and conv2 with bn2, the skip sum and the
    /// last ReLU. `None` where the CPU kernels do not apply.
    fn forward_fused(&self, x: &Tensor, name: Option<&str>, tap: Tap) -> Result<Option<Tensor>> {
        let Some(h) = self
            .conv1
            .forward_inference(x, Some(&self.bn1), None, true)?
        else {
            return Ok(None);
        };
        let h = match name {
            Some(n) => tap(&format!("{n}.conv1"), h)?,
            None => h,
        };
        let skip = match &self.projection {
            Some((c, bn)) => match c.forward_inference(x, Some(bn), None, false)? {
                Some(s) => s,
                None => return Ok(None),
            },
            None => x.clone(),
        };
        self.conv2
            .forward_inference(&h, Some(&self.bn2), Some(&skip), true)
    }
}

enum Op {
    Conv(Conv2d),
    /// Batch norm, with the ReLU after it fused in when nothing taps between them.
    BatchNorm(BatchNorm, bool),
    MaxPool2,
    AvgPool(usize),
    GlobalAvgPool,
    Flatten,
    Linear(Linear),
    Dropout(Dropout),
    Activation(Activation),
    Residual(Box<Residual>),
    Reshape(Vec<usize>),
    Upsample(usize),
    Recurrent(Recurrent),
}

struct Step {
    op: Op,
    tap: Option<String>,
}

pub struct Network {
    steps: Vec<Step>,
    layers: Vec<LayerInfo>,
}

impl Network {
    /// Builds the layers of `spec`, whose shapes are checked first.
    pub fn new(spec: &NetSpec, vb: VarBuilder) -> Result<Self> {
        let shapes = spec.shapes()?;
        let mut steps: Vec<Step> = Vec::new();
        let mut layers = Vec::new();
        let mut rf = Rf::default();
        let mut input: &[usize] = &spec.input;
        let mut dropouts = 0;
        for (i, (layer, shape)) in spec.layers.iter().zip(&shapes).enumerate() {
            let vb = vb.pp(layer.param_name(i).unwrap_or_default());
            let tap = layer.tap().map(str::to_string);
            let op = match layer {
                LayerSpec::Conv2d {
                    out,
                    kernel,
                    stride,
                    padding,
                    bias,
                    ..
                } => {
                    rf = rf.conv(*kernel, *stride, *padding);
                    Op::Conv(Conv2d::new(
                        input[0], *out, *kernel, *stride, *padding, *bias, vb,
                    )?)
                }
                LayerSpec::BatchNorm { .. } => Op::BatchNorm(BatchNorm::new(input[0], vb)?, false),
                LayerSpec::MaxPool { .. } => {
                    rf = rf.conv(2, 2, 0);
                    Op::MaxPool2
                }
                LayerSpec::AvgPool { size, .. } => {
                    rf = rf.conv(*size, *size, 0);
                    Op::AvgPool(*size)
                }
                LayerSpec::GlobalAvgPool { .. } => Op::GlobalAvgPool,
                LayerSpec::Flatten => Op::Flatten,
                LayerSpec::Linear { out, bias, .. } => {
                    Op::Linear(Linear::with_bias(input[0], *out, *bias, vb)?)
                }
                LayerSpec::Dropout { p } => {
                    // Streams 1, 2, ...: the first matches the hand-written nets it replaces.
                    dropouts += 1;
                    Op::Dropout(Dropout::new(*p, dropouts))
                }
                LayerSpec::Relu { .. } => Op::Activation(Activation::Relu),
                LayerSpec::Sigmoid { .. } => Op::Activation(Activation::Sigmoid),
                LayerSpec::Tanh { .. } => Op::Activation(Activation::Tanh),
                LayerSpec::LeakyRelu { slope, .. } => Op::Activation(Activation::LeakyRelu(*slope)),
                LayerSpec::Mish { .. } => Op::Activation(Activation::Mish),
                LayerSpec::Reshape { shape } => Op::Reshape(shape.clone()),
                // Receptive fields are for the image inputs of classifiers; a generator's
                // upsampling leaves them as they are.
                LayerSpec::Upsample { scale } => Op::Upsample(*scale),
                LayerSpec::Rnn {
                    cell,
                    hidden,
                    layers,
                    bias,
                    ..
                } => {
                    let (_, features) = sequence(input).expect("shapes() checked the input");
                    Op::Recurrent(Recurrent::new(
                        *cell, features, *hidden, *layers, *bias, vb,
                    )?)
                }
                LayerSpec::Residual { out, stride, .. } => {
                    rf = rf.conv(3, *stride, 1);
                    if let Some(name) = &tap {
                        layers.push(info(&format!("{name}.conv1"), shape, rf));
                    }
                    rf = rf.conv(3, 1, 1);
                    Op::Residual(Box::new(Residual::new(input[0], *out, *stride, vb)?))
                }
            };
            if let Some(name) = &tap {
                layers.push(info(name, shape, rf));
            }
            // A ReLU right after a batch norm that nothing taps runs inside the batch norm.
            match (&op, steps.last_mut()) {
                (
                    Op::Activation(Activation::Relu),
                    Some(Step {
                        op: Op::BatchNorm(_, relu @ false),
                        tap: last_tap @ None,
                    }),
                ) => {
                    *relu = true;
                    *last_tap = tap;
                }
                _ => steps.push(Step { op, tap }),
            }
            input = shape;
        }
        if layers.last().is_none_or(|l| l.name != "logits") {
            let classes = input[0];
            layers.push(LayerInfo::fc("logits", classes));
        }
        Ok(Self { steps, layers })
    }
}

/// Nearest-neighbour upsampling as a broadcast: `[b, c, h, w]` to `[b, c, h*s, w*s]`. Built from
/// reshape and broadcast, whose gradients (a sum over each block) candle has long had right;
/// `native/tests/gan.rs` checks both directions against direct loops.
pub fn upsample_nearest(x: &Tensor, scale: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    Ok(x.reshape((b, c, h, 1, w, 1))?
        .broadcast_as((b, c, h, scale, w, scale))?
        .reshape((b, c, h * scale, w * scale))?)
}

/// A recurrent layer's input as `[batch, steps, features]`: an image's rows, each with every
/// channel's values of that row (`spec::sequence`), or a sequence as it is.
fn rows(x: &Tensor) -> Result<Tensor> {
    Ok(match *x.dims() {
        [b, 1, h, w] => x.reshape((b, h, w))?,
        [b, c, h, w] => x.transpose(1, 2)?.contiguous()?.reshape((b, h, c * w))?,
        _ => x.clone(),
    })
}

/// What a tap at this point looks like to an experiment.
fn info(name: &str, shape: &[usize], rf: Rf) -> LayerInfo {
    match shape {
        [c, h, _] => LayerInfo::conv(name, *c, *h, rf),
        _ => LayerInfo::fc(name, shape[0]),
    }
}

impl Op {
    /// What this step adds to the conv before it when the two run as one fused inference op: a
    /// batch norm (with its ReLU, if fused into it), or only a ReLU, for a conv whose batch norm
    /// was folded into its bias (as exporters write them). `None` for any other step.
    fn conv_epilogue(&self) -> Option<(Option<&BatchNorm>, bool)> {
        match self {
            Op::BatchNorm(bn, relu) => Some((Some(bn), *relu)),
            Op::Activation(Activation::Relu) => Some((None, true)),
            _ => None,
        }
    }
}

impl Net for Network {
    /// Where no gradient is wanted (inference on a plain tensor, not a variable), a convolution
    /// that nothing taps runs with the batch norm or ReLU after it, and a residual block with its own
    /// norms, sum and ReLUs, as single fused ops: one pass over each output instead of three or
    /// four, with the same bits.
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap) -> Result<Tensor> {
        let fuse = !train && !x.track_op();
        let mut x = x.clone();
        let mut steps = self.steps.iter().peekable();
        while let Some(mut step) = steps.next() {
            let epilogue = steps.peek().and_then(|next| next.op.conv_epilogue());
            x = match (&step.op, epilogue) {
                (Op::Conv(c), Some((bn, relu))) if fuse && step.tap.is_none() => {
                    match c.forward_inference(&x, bn, None, relu)? {
                        Some(y) => {
                            step = steps.next().expect("peeked");
                            y
                        }
                        None => c.forward(&x, train)?,
                    }
                }
                (Op::Conv(c), _) => c.forward(&x, train)?,
                (Op::BatchNorm(bn, relu), _) => bn.forward(&x, train, *relu)?,
                (Op::MaxPool2, _) => max_pool2(&x)?,
                (Op::AvgPool(size), _) => avg_pool(&x, *size)?,
                (Op::GlobalAvgPool, _) => x.mean((2, 3))?,
                (Op::Flatten, _) => x.flatten_from(1)?,
                (Op::Linear(l), _) => l.forward(&x)?,
                (Op::Dropout(d), _) => d.forward(&x, train)?,
                (Op::Activation(a), _) => a.forward(&x)?,
                (Op::Residual(r), _) => r.forward(&x, train, fuse, step.tap.as_deref(), tap)?,
                (Op::Reshape(shape), _) => {
                    let mut dims = vec![x.dim(0)?];
                    dims.extend(shape);
                    x.reshape(dims)?
                }
                (Op::Upsample(scale), _) => upsample_nearest(&x, *scale)?,
                (Op::Recurrent(r), _) => r.forward_last(&rows(&x)?)?,
            };
            if let Some(name) = &step.tap {
                x = tap(name, x)?;
            }
        }
        if self
            .steps
            .last()
            .is_none_or(|s| s.tap.as_deref() != Some("logits"))
        {
            x = tap("logits", x)?;
        }
        Ok(x)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        self.layers.clone()
    }

    fn set_step_seed(&self, seed: u64) {
        for step in &self.steps {
            if let Op::Dropout(d) = &step.op {
                d.set_step_seed(seed);
            }
        }
    }
}
