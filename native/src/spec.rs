//! A network as data: the JSON list of layers that `models::network` compiles, with the shape
//! check that names the layer at fault before any weight is allocated.

use crate::error::{Error, Result};
pub use crate::recurrent::Cell;
use serde::{Deserialize, Serialize};

/// A whole network: a display name and its layers, applied in order to its input, a `[1, 28, 28]`
/// image unless `input` says otherwise (a GAN generator's latent vector). `output` says what the
/// last layer gives; a classifier's logits unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    pub name: String,
    #[serde(default = "image_shape", skip_serializing_if = "is_image_shape")]
    pub input: Shape,
    #[serde(default, skip_serializing_if = "Output::is_logits")]
    pub output: Output,
    pub layers: Vec<LayerSpec>,
}

/// What a network's last layer gives, which fixes the shape it must have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// `[classes]` logits, classes >= 2: a classifier.
    #[default]
    Logits,
    /// A `[1, 28, 28]` image (or its 784 values), in the normalised space: a GAN's generator.
    Image,
    /// `[1]`, one logit: a GAN's discriminator.
    Score,
}

impl Output {
    fn is_logits(&self) -> bool {
        *self == Self::Logits
    }
}

/// The image every dataset here has: one channel, 28 x 28.
pub const IMAGE: [usize; 3] = [1, 28, 28];

fn image_shape() -> Shape {
    IMAGE.to_vec()
}

fn is_image_shape(shape: &Shape) -> bool {
    shape[..] == IMAGE
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn half() -> f32 {
    0.5
}
fn leaky_slope() -> f64 {
    0.01 // PyTorch's LeakyReLU default
}

/// One layer. `name` prefixes its parameters (`conv1.weight`); without one, the layer's index is
/// used, as in PyTorch's `nn.Sequential` (`0.weight`). `tap` publishes the layer's output under
/// that name for STA, activations and microstimulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    Conv2d {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// `BatchNorm1d` on `[features]`, `BatchNorm2d` on `[channels, h, w]`.
    BatchNorm {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// Max pooling; `stride` defaults to `size`. Only 2x2 windows with stride 2 are implemented.
    MaxPool {
        size: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// Average pooling with window `size` and stride `size` (floor mode: a ragged edge is dropped,
    /// as in PyTorch's `AvgPool2d(size)`).
    AvgPool {
        size: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// The mean over every position of each channel: `[c, h, w]` to `[c]`.
    GlobalAvgPool {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    Flatten,
    Linear {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        out: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// Inverted dropout with drop probability `p` while training; the identity in inference.
    Dropout {
        #[serde(default = "half")]
        p: f32,
    },
    Relu {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    Sigmoid {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    Tanh {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    LeakyRelu {
        #[serde(default = "leaky_slope")]
        slope: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// The same values in a new per-image shape, as `x.view(-1, *shape)` (a generator's fc output
    /// to `[c, h, w]` maps).
    Reshape {
        shape: Vec<usize>,
    },
    /// Nearest-neighbour upsampling by an integer `scale` (PyTorch's `Upsample(scale_factor,
    /// mode="nearest")`): each pixel becomes a `scale x scale` block.
    Upsample {
        scale: usize,
    },
    /// x * tanh(softplus(x)) (Misra, 2019).
    Mish {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// A ResNet basic block (He et al., 2016): 3x3 conv, BN, ReLU, 3x3 conv, BN, plus the input
    /// (through a 1x1 conv and BN when the width or stride changes), then ReLU. Taps
    /// `<tap>.conv1` inside and `<tap>` at the output.
    Residual {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        out: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
    /// Stacked recurrent layers (PyTorch's `nn.RNN` with tanh, or `nn.LSTM`) reading a sequence:
    /// an image `[c, h, w]` row by row (h steps of c*w values, as the classic MNIST RNN does) or
    /// a `[steps, features]` input. Gives the top layer's state after the last step, `[hidden]`.
    /// Parameters `<name>.weight_ih_l0` etc., as PyTorch names them.
    Rnn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default)]
        cell: Cell,
        hidden: usize,
        /// Stacked layers (PyTorch's `num_layers`).
        #[serde(default = "one")]
        layers: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tap: Option<String>,
    },
}

impl LayerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Conv2d { .. } => "conv2d",
            Self::BatchNorm { .. } => "batch_norm",
            Self::MaxPool { .. } => "max_pool",
            Self::AvgPool { .. } => "avg_pool",
            Self::GlobalAvgPool { .. } => "global_avg_pool",
            Self::Flatten => "flatten",
            Self::Linear { .. } => "linear",
            Self::Dropout { .. } => "dropout",
            Self::Relu { .. } => "relu",
            Self::Sigmoid { .. } => "sigmoid",
            Self::Tanh { .. } => "tanh",
            Self::LeakyRelu { .. } => "leaky_relu",
            Self::Mish { .. } => "mish",
            Self::Reshape { .. } => "reshape",
            Self::Upsample { .. } => "upsample",
            Self::Residual { .. } => "residual",
            Self::Rnn { .. } => "rnn",
        }
    }

    pub fn tap(&self) -> Option<&str> {
        match self {
            Self::Conv2d { tap, .. }
            | Self::BatchNorm { tap, .. }
            | Self::MaxPool { tap, .. }
            | Self::AvgPool { tap, .. }
            | Self::GlobalAvgPool { tap }
            | Self::Linear { tap, .. }
            | Self::Relu { tap }
            | Self::Sigmoid { tap }
            | Self::Tanh { tap }
            | Self::LeakyRelu { tap, .. }
            | Self::Mish { tap }
            | Self::Residual { tap, .. }
            | Self::Rnn { tap, .. } => tap.as_deref(),
            Self::Flatten | Self::Dropout { .. } | Self::Reshape { .. } | Self::Upsample { .. } => {
                None
            }
        }
    }

    /// The prefix of the layer's parameters, for layers that have any.
    pub fn param_name(&self, index: usize) -> Option<String> {
        match self {
            Self::Conv2d { name, .. }
            | Self::BatchNorm { name, .. }
            | Self::Linear { name, .. }
            | Self::Residual { name, .. }
            | Self::Rnn { name, .. } => Some(name.clone().unwrap_or_else(|| index.to_string())),
            _ => None,
        }
    }
}

/// The per-image shape between layers: `[c, h, w]`, `[steps, features]` or `[features]`.
pub type Shape = Vec<usize>;

/// How a recurrent layer reads its input: `(steps, features per step)`. An image is read row by
/// row, each step seeing every channel of one row.
pub fn sequence(shape: &[usize]) -> Option<(usize, usize)> {
    match *shape {
        [c, h, w] => Some((h, c * w)),
        [steps, features] => Some((steps, features)),
        _ => None,
    }
}

/// Output size of a window of `kernel` sliding by `stride` over `size` padded by `padding`.
pub(crate) fn window(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = size + 2 * padding;
    (kernel >= 1 && stride >= 1 && padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

impl NetSpec {
    /// The shape after every layer, checking each layer against its input and the last against
    /// `output`; the error names the layer (index, kind, name) and says what it expected.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        if self.layers.is_empty() {
            crate::bail!(InvalidArgument, "spec {}: has no layers", self.name);
        }
        if self.input.is_empty() || self.input.contains(&0) {
            crate::bail!(
                InvalidArgument,
                "spec {}: the input shape {:?} is empty",
                self.name,
                self.input
            );
        }
        if self.output == Output::Logits && self.input[..] != IMAGE {
            crate::bail!(
                InvalidArgument,
                "spec {}: a classifier's input must be a 1x28x28 image (MNIST, Fashion-MNIST), got \
                 {:?}; other input sizes (3x32x32 CIFAR nets) are not supported yet",
                self.name,
                self.input
            );
        }
        let mut shape: Shape = self.input.clone();
        let mut out = Vec::with_capacity(self.layers.len());
        let mut params = std::collections::HashSet::new();
        let mut taps = std::collections::HashSet::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let at = || {
                let name = layer
                    .param_name(i)
                    .or(layer.tap().map(str::to_string))
                    .map(|n| format!(" \"{n}\""))
                    .unwrap_or_default();
                format!("spec {}: layer {i} ({}{name})", self.name, layer.kind())
            };
            let bad = |why: String| Error::InvalidArgument(format!("{}: {why}", at()));
            let image = |shape: &Shape| -> Result<(usize, usize, usize)> {
                match shape[..] {
                    [c, h, w] => Ok((c, h, w)),
                    _ => Err(bad(format!(
                        "needs an image input [channels, height, width], got {shape:?}"
                    ))),
                }
            };
            if let Some(p) = layer.param_name(i) {
                if !params.insert(p.clone()) {
                    return Err(bad(format!("the parameter name \"{p}\" is used twice")));
                }
            }
            if let Some(t) = layer.tap() {
                if t == "logits" && i + 1 != self.layers.len() {
                    return Err(bad("only the last layer may be tapped as \"logits\"".into()));
                }
                if !taps.insert(t.to_string()) {
                    return Err(bad(format!("the tap name \"{t}\" is used twice")));
                }
            }
            shape = match layer {
                LayerSpec::Conv2d {
                    out,
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    let (_, h, w) = image(&shape)?;
                    if *out == 0 {
                        return Err(bad("out must be >= 1".into()));
                    }
                    match (
                        window(h, *kernel, *stride, *padding),
                        window(w, *kernel, *stride, *padding),
                    ) {
                        (Some(oh), Some(ow)) => vec![*out, oh, ow],
                        _ => {
                            return Err(bad(format!(
                                "a {kernel}x{kernel} kernel (stride {stride}, padding {padding}) \
                                 does not fit the input {shape:?}"
                            )))
                        }
                    }
                }
                LayerSpec::BatchNorm { .. } => match shape.len() {
                    1 | 3 => shape,
                    _ => return Err(bad(format!("needs [features] or [c, h, w], got {shape:?}"))),
                },
                LayerSpec::MaxPool { size, stride, .. } => {
                    let (c, h, w) = image(&shape)?;
                    if *size != 2 || stride.unwrap_or(*size) != 2 {
                        return Err(bad(format!(
                            "only 2x2 max pooling with stride 2 is implemented, got size {size} \
                             stride {}",
                            stride.unwrap_or(*size)
                        )));
                    }
                    if h < 2 || w < 2 {
                        return Err(bad(format!("input {shape:?} is smaller than the window")));
                    }
                    vec![c, h / 2, w / 2]
                }
                LayerSpec::AvgPool { size, .. } => {
                    let (c, h, w) = image(&shape)?;
                    if *size == 0 || h < *size || w < *size {
                        return Err(bad(format!(
                            "a {size}x{size} window does not fit the input {shape:?}"
                        )));
                    }
                    vec![c, h / size, w / size]
                }
                LayerSpec::GlobalAvgPool { .. } => vec![image(&shape)?.0],
                LayerSpec::Flatten => vec![shape.iter().product()],
                LayerSpec::Linear { out, .. } => {
                    if shape.len() != 1 {
                        return Err(bad(format!(
                            "needs a flat input [features], got {shape:?}; add a flatten before it"
                        )));
                    }
                    if *out == 0 {
                        return Err(bad("out must be >= 1".into()));
                    }
                    vec![*out]
                }
                LayerSpec::Dropout { p } => {
                    if !(0.0..1.0).contains(p) {
                        return Err(bad(format!("p must be in [0, 1), got {p}")));
                    }
                    shape
                }
                LayerSpec::LeakyRelu { slope, .. } if !slope.is_finite() => {
                    return Err(bad(format!("slope must be finite, got {slope}")))
                }
                LayerSpec::Relu { .. }
                | LayerSpec::Sigmoid { .. }
                | LayerSpec::Tanh { .. }
                | LayerSpec::LeakyRelu { .. }
                | LayerSpec::Mish { .. } => shape,
                LayerSpec::Residual { out, stride, .. } => {
                    let (_, h, w) = image(&shape)?;
                    match (window(h, 3, *stride, 1), window(w, 3, *stride, 1)) {
                        (Some(oh), Some(ow)) if *out > 0 => vec![*out, oh, ow],
                        _ => return Err(bad(format!("out {out} stride {stride} on {shape:?}"))),
                    }
                }
                LayerSpec::Reshape { shape: to } => {
                    let (from, into) = (
                        shape.iter().product::<usize>(),
                        to.iter().product::<usize>(),
                    );
                    if to.is_empty() || to.len() > 3 || from != into {
                        return Err(bad(format!(
                            "cannot view {shape:?} ({from} values) as {to:?} ({into} values); \
                             the shape needs 1 to 3 dimensions and the same count"
                        )));
                    }
                    to.clone()
                }
                LayerSpec::Rnn { hidden, layers, .. } => {
                    if sequence(&shape).is_none() {
                        return Err(bad(format!(
                            "needs a sequence: an image [c, h, w] (read row by row) or [steps, \
                             features], got {shape:?}"
                        )));
                    }
                    if *hidden == 0 || *layers == 0 {
                        return Err(bad(format!(
                            "hidden and layers must be >= 1, got hidden {hidden} layers {layers}"
                        )));
                    }
                    vec![*hidden]
                }
                LayerSpec::Upsample { scale } => {
                    let (c, h, w) = image(&shape)?;
                    if *scale < 1 {
                        return Err(bad("scale must be >= 1".into()));
                    }
                    vec![c, h * scale, w * scale]
                }
            };
            if shape.contains(&0) {
                return Err(bad(format!("the output shape {shape:?} is empty")));
            }
            out.push(shape.clone());
        }
        let fits = match self.output {
            Output::Logits => matches!(shape[..], [classes] if classes >= 2),
            Output::Image => shape[..] == IMAGE || shape[..] == [784],
            Output::Score => shape[..] == [1],
        };
        if !fits {
            let wanted = match self.output {
                Output::Logits => "[classes] logits with classes >= 2",
                Output::Image => "an image, [1, 28, 28] or [784]",
                Output::Score => "one score, [1]",
            };
            crate::bail!(
                InvalidArgument,
                "spec {}: the last layer must give {wanted}, got {shape:?}",
                self.name
            );
        }
        Ok(out)
    }

    /// Values per input: 784 for an image.
    pub fn input_size(&self) -> usize {
        self.input.iter().product()
    }

    /// The number of classes: the width of the last layer's output (its size, for a generator).
    pub fn classes(&self) -> Result<usize> {
        Ok(self
            .shapes()?
            .last()
            .expect("shapes checked non-empty")
            .iter()
            .product())
    }
}
