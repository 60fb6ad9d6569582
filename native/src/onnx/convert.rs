//! An ONNX image classifier turned into a wna spec plus weights under wna's names, so that every
//! analysis (noise maps, STA, FGSM's input gradients, feedback, templates) runs it on wna's own
//! checked kernels and autograd. Not an ONNX interpreter: the graph is walked from its input
//! along one path, each node mapped to a spec layer, and a branch that rejoins at an `Add` is
//! read as a ResNet basic block. What does not map is refused with the op and the node's name.

use super::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};
use crate::error::{Error, Result};
use crate::kernels::transpose;
use crate::spec::{window, LayerSpec, NetSpec, Shape, IMAGE};
use std::collections::{HashMap, HashSet};

/// wna's batch-norm epsilon; ONNX files state their own, which is folded into the running
/// variance.
const WNA_BN_EPS: f32 = crate::layers::BN_EPS as f32;

/// The ops the converter maps, for the error that meets any other.
pub const SUPPORTED: &str = "Conv, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, Mish, \
     MaxPool (2x2, stride 2), AveragePool (k x k, stride k), GlobalAveragePool, Flatten, Reshape, \
     Squeeze, Gemm, MatMul (+ Add bias), Add (ResNet basic blocks), Dropout, Identity, Constant, \
     a final Softmax/LogSoftmax, Sub/Div/Mul/Add by a scalar on the input, and Transpose between \
     channels-last and channels-first (tf2onnx's Keras layout)";

/// Where the graph's data layout stands. wna's maps are channels-first throughout; a
/// channels-last graph (Keras through tf2onnx) is followed while its transposes cancel out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    ChannelsFirst,
    /// A `[batch, 28, 28, 1]` input not yet transposed; with one channel its values are
    /// already in wna's order.
    ChannelsLastInput,
    /// After a transpose of a `[c, h, w]` map to `[h, w, c]`.
    ChannelsLast(usize, usize, usize),
    /// That map flattened in `h, w, c` order: the next linear layer's inputs are permuted.
    FlatChannelsLast(usize, usize, usize),
}

/// One weight tensor under its wna variable name.
pub struct Weight {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The result of [`convert`].
pub struct Converted {
    pub spec: NetSpec,
    pub weights: Vec<Weight>,
    /// The graph's own input normalisation, `(x - shift) / scale` from Sub/Div nodes on its
    /// input, to compose with the user's.
    pub shift: f32,
    pub scale: f32,
    /// What the conversion left out or changed, in words (a dropped final softmax, …).
    pub notes: Vec<String>,
    pub producer: String,
    pub opset: i64,
}

/// Converts a parsed ONNX model into a spec named `name` and its weights.
pub fn convert(model: &ModelProto, name: &str) -> Result<Converted> {
    let mut w = Walker::new(&model.graph)?;
    w.walk()?;
    let spec = NetSpec {
        name: name.to_string(),
        input: IMAGE.to_vec(),
        output: Default::default(),
        layers: w.layers,
    };
    spec.shapes()
        .map_err(|e| Error::InvalidArgument(format!("the converted network is not valid: {e}")))?;
    Ok(Converted {
        spec,
        weights: w.weights,
        shift: w.shift,
        scale: w.scale,
        notes: w.notes,
        producer: model.producer.clone(),
        opset: model.opset,
    })
}

pub(super) struct Walker<'a> {
    pub(super) g: &'a GraphProto,
    consts: HashMap<String, TensorProto>,
    /// Nodes (by index) that read each value as data, not as a constant.
    consumers: HashMap<String, Vec<usize>>,
    /// The graph's image input and its logits output.
    start: String,
    output: String,
    pub(super) layers: Vec<LayerSpec>,
    weights: Vec<Weight>,
    used_names: HashSet<String>,
    /// The per-image shape after the layers so far.
    pub(super) shape: Shape,
    /// The layer whose tap moves onto a batch norm or activation right after it, so that a
    /// conv's tap sees its rectified output, as in wna's own nets.
    pub(super) movable_tap: Option<usize>,
    layout: Layout,
    shift: f32,
    scale: f32,
    notes: Vec<String>,
}

/// "Conv /layer1/layer1.0/conv1/Conv" in messages.
fn describe(n: &NodeProto) -> String {
    format!("node \"{}\" ({})", n.name, n.op_type)
}

fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    n.attributes.iter().find(|a| a.name == name)
}

fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).and_then(|a| a.f).unwrap_or(default)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

pub(super) fn refuse(n: &NodeProto, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{}: {why}", describe(n)))
}

/// A module path from an exporter's node name: "/layer1/layer1.0/conv1/Conv" gives
/// "layer1.0.conv1" (PyTorch repeats each parent's path in the next scope).
fn module_path(node_name: &str) -> Option<String> {
    let mut parts: Vec<&str> = node_name.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop(); // the op itself
    let mut kept: Vec<&str> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let covered = parts
            .get(i + 1)
            .is_some_and(|next| next.starts_with(&format!("{p}.")));
        if !covered {
            kept.push(p);
        }
    }
    let path = kept.join(".");
    let clean: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (!clean.is_empty()).then_some(clean)
}

impl<'a> Walker<'a> {
    fn new(g: &'a GraphProto) -> Result<Self> {
        let mut consts: HashMap<String, TensorProto> = g
            .initializers
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        // Constants and identities of constants first: exporters alias initializers this way.
        for n in &g.nodes {
            match n.op_type.as_str() {
                "Constant" => {
                    let t = constant_value(n)?;
                    if let Some(out) = n.outputs.first() {
                        consts.insert(out.clone(), t);
                    }
                }
                "Identity" => {
                    if let (Some(i), Some(o)) = (n.inputs.first(), n.outputs.first()) {
                        if let Some(t) = consts.get(i).cloned() {
                            consts.insert(o.clone(), t);
                        }
                    }
                }
                _ => {}
            }
        }
        let inputs: Vec<_> = g
            .inputs
            .iter()
            .filter(|i| !consts.contains_key(&i.name))
            .collect();
        let [input] = inputs[..] else {
            let names: Vec<_> = inputs.iter().map(|i| i.name.as_str()).collect();
            crate::bail!(
                InvalidArgument,
                "the graph has {} data inputs ({}); wna analyses a classifier of one image input",
                names.len(),
                names.join(", ")
            );
        };
        let [output] = &g.outputs[..] else {
            crate::bail!(
                InvalidArgument,
                "the graph has {} outputs; wna analyses a classifier with one output, its logits",
                g.outputs.len()
            );
        };
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            if n.op_type == "Constant" || n.outputs.iter().all(|o| consts.contains_key(o)) {
                continue;
            }
            for inp in &n.inputs {
                if !inp.is_empty() && !consts.contains_key(inp) {
                    let users = consumers.entry(inp.clone()).or_default();
                    if !users.contains(&i) {
                        users.push(i);
                    }
                }
            }
        }
        let (shape, layout) = input_shape(&input.shape)?;
        let mut w = Self {
            g,
            consts,
            consumers,
            start: input.name.clone(),
            output: output.name.clone(),
            layers: Vec::new(),
            weights: Vec::new(),
            used_names: HashSet::new(),
            shape: IMAGE.to_vec(),
            movable_tap: None,
            layout,
            shift: 0.0,
            scale: 1.0,
            notes: Vec::new(),
        };
        if shape.len() == 1 {
            // A [batch, 784] input: wna feeds 1x28x28 images, flattened here first.
            w.layers.push(LayerSpec::Flatten);
            w.shape = vec![784];
        }
        Ok(w)
    }
}

/// The per-image input shape, `[1, 28, 28]` or `[784]`, from `[batch, ...]`, and its layout.
fn input_shape(dims: &Option<Vec<Option<i64>>>) -> Result<(Shape, Layout)> {
    let first = Layout::ChannelsFirst;
    let Some(dims) = dims else {
        return Ok((IMAGE.to_vec(), first)); // unstated: checked when the first layer meets it
    };
    let per_image: Vec<Option<i64>> = dims.iter().skip(1).cloned().collect();
    match per_image[..] {
        [Some(1), Some(28), Some(28)] => Ok((IMAGE.to_vec(), first)),
        [Some(784)] => Ok((vec![784], first)),
        [Some(28), Some(28), Some(1)] => Ok((IMAGE.to_vec(), Layout::ChannelsLastInput)),
        _ => {
            let shown: Vec<String> = dims
                .iter()
                .map(|d| d.map_or("?".into(), |v| v.to_string()))
                .collect();
            crate::bail!(
                InvalidArgument,
                "the model's input is {} but wna's analyses take 1x28x28 images (MNIST, \
                 Fashion-MNIST): white noise, the datasets and the maps are 28x28 with one \
                 channel. Other input sizes (3x32x32 CIFAR nets) are not supported yet",
                shown.join("x")
            )
        }
    }
}

fn constant_value(n: &NodeProto) -> Result<TensorProto> {
    let mut t = TensorProto {
        name: n.outputs.first().cloned().unwrap_or_default(),
        ..Default::default()
    };
    for a in &n.attributes {
        match a.name.as_str() {
            "value" => {
                if let Some(v) = &a.t {
                    let name = t.name.clone();
                    t = v.clone();
                    t.name = name;
                }
            }
            "value_float" => {
                t.data_type = super::proto::FLOAT;
                t.float_data = vec![a.f.unwrap_or(0.0)];
            }
            "value_floats" => {
                t.data_type = super::proto::FLOAT;
                t.dims = vec![a.floats.len() as i64];
                t.float_data = a.floats.clone();
            }
            "value_int" => {
                t.data_type = super::proto::INT64;
                t.int64_data = vec![a.i.unwrap_or(0)];
            }
            "value_ints" => {
                t.data_type = super::proto::INT64;
                t.dims = vec![a.ints.len() as i64];
                t.int64_data = a.ints.clone();
            }
            other => return Err(refuse(n, format!("unsupported attribute {other}"))),
        }
    }
    Ok(t)
}

/// A conv node's geometry and weights, checked for what wna's `Conv2d` runs.
pub(super) struct ConvNode {
    pub(super) out: usize,
    pub(super) cin: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) padding: usize,
    pub(super) shape: Vec<usize>,
    pub(super) weight: Vec<f32>,
    pub(super) bias: Option<Vec<f32>>,
}

/// A batch norm's four tensors, `[weight, bias, running_mean, running_var]`.
pub(super) type BnParams = [Vec<f32>; 4];

impl Walker<'_> {
    pub(super) fn users(&self, value: &str) -> Vec<usize> {
        self.consumers.get(value).cloned().unwrap_or_default()
    }

    pub(super) fn data_inputs(&self, n: &NodeProto) -> Vec<String> {
        n.inputs
            .iter()
            .filter(|i| !i.is_empty() && !self.consts.contains_key(*i))
            .cloned()
            .collect()
    }

    /// Whether the node's first input is a constant, where the data must come first.
    fn constant_first(&self, n: &NodeProto) -> bool {
        n.inputs
            .first()
            .is_some_and(|i| self.consts.contains_key(i))
    }

    fn constant(&self, n: &NodeProto, slot: usize, what: &str) -> Result<&TensorProto> {
        self.optional_constant(n, slot, what)?
            .ok_or_else(|| refuse(n, format!("has no {what} input")))
    }

    fn optional_constant(
        &self,
        n: &NodeProto,
        slot: usize,
        what: &str,
    ) -> Result<Option<&TensorProto>> {
        let Some(name) = n.inputs.get(slot).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        match self.consts.get(name) {
            Some(t) => Ok(Some(t)),
            None => Err(refuse(
                n,
                format!("its {what} \"{name}\" is computed in the graph; wna needs it constant"),
            )),
        }
    }

    /// A unique layer name from the node's module path, else `<fallback><index>`.
    pub(super) fn layer_name(&mut self, n: &NodeProto, fallback: &str) -> String {
        let base =
            module_path(&n.name).unwrap_or_else(|| format!("{fallback}{}", self.layers.len()));
        let mut name = base.clone();
        let mut k = 2;
        while !self.used_names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    pub(super) fn add_weight(&mut self, name: String, shape: Vec<usize>, values: Vec<f32>) {
        self.weights.push(Weight {
            name,
            shape,
            values,
        });
    }

    pub(super) fn add_bn(&mut self, prefix: &str, [weight, bias, mean, var]: BnParams) {
        let c = weight.len();
        for (part, values) in [
            ("weight", weight),
            ("bias", bias),
            ("running_mean", mean),
            ("running_var", var),
        ] {
            self.add_weight(format!("{prefix}.{part}"), vec![c], values);
        }
    }

    pub(super) fn map_shape(&self, n: &NodeProto) -> Result<(usize, usize, usize)> {
        match self.shape[..] {
            [c, h, w] => Ok((c, h, w)),
            _ => Err(refuse(
                n,
                format!("needs a [channels, h, w] map, gets {:?}", self.shape),
            )),
        }
    }

    fn walk(&mut self) -> Result<()> {
        let mut cur = self.start.clone();
        for _ in 0..=self.g.nodes.len() {
            if cur == self.output {
                // The logits layer is tapped as "logits" already.
                if let Some(LayerSpec::Linear { tap, .. }) = self.layers.last_mut() {
                    *tap = None;
                }
                if self.layers.iter().all(|l| *l == LayerSpec::Flatten) {
                    crate::bail!(InvalidArgument, "the graph has no layers to convert");
                }
                return Ok(());
            }
            cur = match self.users(&cur)[..] {
                [] => crate::bail!(
                    InvalidArgument,
                    "value \"{cur}\" leads nowhere: no node uses it and it is not the graph's \
                     output \"{}\"",
                    self.output
                ),
                [i] => self.step(i)?,
                [a, b] => self.residual(&cur, a, b)?,
                ref many => crate::bail!(
                    InvalidArgument,
                    "value \"{cur}\" feeds {} nodes; wna converts chains of layers and ResNet \
                     basic blocks (two branches that rejoin at an Add)",
                    many.len()
                ),
            };
        }
        crate::bail!(InvalidArgument, "the graph has a cycle")
    }

    /// Maps one node; returns the value the walk continues from.
    fn step(&mut self, i: usize) -> Result<String> {
        let n = self.g.nodes[i].clone();
        let out = n
            .outputs
            .first()
            .cloned()
            .ok_or_else(|| refuse(&n, "has no output"))?;
        if !n.domain.is_empty() && n.domain != "ai.onnx" {
            return Err(refuse(
                &n,
                format!(
                    "is in the custom domain \"{}\"; wna converts standard ONNX ops: {SUPPORTED}",
                    n.domain
                ),
            ));
        }
        if self.data_inputs(&n).len() > 1 {
            return Err(refuse(
                &n,
                "joins two computed values outside a ResNet basic block; wna converts chains of \
                 layers and basic blocks",
            ));
        }
        if n.op_type == "Transpose" {
            self.transpose(&n)?;
            return Ok(out);
        }
        self.check_layout(&n)?;
        match n.op_type.as_str() {
            "Identity" | "Dropout" => {}
            "Conv" => self.conv(&n)?,
            "BatchNormalization" => self.batch_norm(&n)?,
            "Relu" => self.activation(LayerSpec::Relu { tap: None }),
            "LeakyRelu" => self.activation(LayerSpec::LeakyRelu {
                slope: attr_f(&n, "alpha", 0.01) as f64,
                tap: None,
            }),
            "Sigmoid" => self.activation(LayerSpec::Sigmoid { tap: None }),
            "Tanh" => self.activation(LayerSpec::Tanh { tap: None }),
            "Mish" => self.activation(LayerSpec::Mish { tap: None }),
            "MaxPool" => self.pool(&n, true)?,
            "AveragePool" => self.pool(&n, false)?,
            "GlobalAveragePool" => {
                let (c, _, _) = self.map_shape(&n)?;
                self.layers.push(LayerSpec::GlobalAvgPool { tap: None });
                self.shape = vec![c];
                self.movable_tap = None;
            }
            "Flatten" => {
                if attr_i(&n, "axis", 1) != 1 {
                    return Err(refuse(&n, "flattens from an axis other than 1"));
                }
                self.flatten();
            }
            "Reshape" => self.reshape(&n)?,
            "Squeeze" => {
                // After a global average pool ONNX has [c, 1, 1] where wna has [c] already.
                if self.shape.iter().skip(1).any(|&d| d != 1) {
                    return Err(refuse(&n, format!("squeezes a {:?} map", self.shape)));
                }
                self.flatten();
            }
            "Gemm" => self.gemm(&n)?,
            "MatMul" => return self.matmul(&n),
            "Sub" | "Div" | "Mul" | "Add" => self.input_scaling(&n)?,
            "Softmax" | "LogSoftmax" => {
                if out != self.output || self.layers.is_empty() {
                    return Err(refuse(
                        &n,
                        "a softmax inside the network; wna converts it only as the last op",
                    ));
                }
                self.notes.push(format!(
                    "the final {} (\"{}\") is left out: wna works on logits, and the predicted \
                     classes are the same",
                    n.op_type, n.name
                ));
            }
            other => {
                return Err(refuse(
                    &n,
                    format!("unsupported op {other}; wna converts {SUPPORTED}"),
                ))
            }
        }
        Ok(out)
    }

    /// A transpose between channels-first and channels-last, where wna can follow it.
    fn transpose(&mut self, n: &NodeProto) -> Result<()> {
        let perm = attr_ints(n, "perm").unwrap_or_default();
        self.layout = match (self.layout, &perm[..], &self.shape[..]) {
            // [batch, 28, 28, 1] to [batch, 1, 28, 28]: the same values for one channel.
            (Layout::ChannelsLastInput, [0, 3, 1, 2], _) => Layout::ChannelsFirst,
            (Layout::ChannelsFirst, [0, 2, 3, 1], &[c, h, w]) => Layout::ChannelsLast(c, h, w),
            (Layout::ChannelsLast(..), [0, 3, 1, 2], _) => Layout::ChannelsFirst,
            _ => {
                return Err(refuse(
                    n,
                    format!(
                        "perm {perm:?} on a {:?} map; wna follows a transpose only between \
                         channels-first and channels-last",
                        self.shape
                    ),
                ))
            }
        };
        Ok(())
    }

    /// Refuses an op that would see a channels-last map, where wna's values are channels-first.
    fn check_layout(&mut self, n: &NodeProto) -> Result<()> {
        let op = n.op_type.as_str();
        let passes = matches!(
            op,
            "Identity" | "Dropout" | "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Mish"
        );
        let flat = matches!(op, "Flatten" | "Reshape");
        let ok = match self.layout {
            Layout::ChannelsFirst => true,
            // Scalar arithmetic and a flatten of a one-channel image do not see the layout.
            Layout::ChannelsLastInput => {
                passes || flat || matches!(op, "Sub" | "Div" | "Mul" | "Add")
            }
            Layout::ChannelsLast(..) => passes || flat,
            Layout::FlatChannelsLast(..) => passes || matches!(op, "Gemm" | "MatMul"),
        };
        if !ok {
            return Err(refuse(
                n,
                "meets a channels-last map; wna converts channels-last graphs only where a \
                 transpose to channels-first follows the input and a flatten comes before a \
                 linear layer (export with tf2onnx --inputs-as-nchw otherwise)",
            ));
        }
        if flat {
            self.layout = match self.layout {
                Layout::ChannelsLast(c, h, w) => Layout::FlatChannelsLast(c, h, w),
                Layout::ChannelsLastInput => Layout::ChannelsFirst,
                other => other,
            };
        }
        Ok(())
    }

    /// Takes the tap off the layer it may move from (a conv or linear, or its batch norm).
    fn take_tap(&mut self) -> Option<String> {
        match self.layers.get_mut(self.movable_tap?)? {
            LayerSpec::Conv2d { tap, .. }
            | LayerSpec::Linear { tap, .. }
            | LayerSpec::BatchNorm { tap, .. } => tap.take(),
            _ => None,
        }
    }

    fn activation(&mut self, mut layer: LayerSpec) {
        let moved = self.take_tap();
        if let LayerSpec::Relu { tap }
        | LayerSpec::LeakyRelu { tap, .. }
        | LayerSpec::Sigmoid { tap }
        | LayerSpec::Tanh { tap }
        | LayerSpec::Mish { tap } = &mut layer
        {
            *tap = moved;
        }
        self.layers.push(layer);
        self.movable_tap = None;
    }

    fn flatten(&mut self) {
        if self.shape.len() > 1 {
            self.layers.push(LayerSpec::Flatten);
            self.shape = vec![self.shape.iter().product()];
        }
        self.movable_tap = None;
    }

    pub(super) fn conv_node(&self, n: &NodeProto) -> Result<ConvNode> {
        let w = self.constant(n, 1, "weight")?;
        let shape = w.shape();
        let [out, cin, kh, kw] = shape[..] else {
            return Err(refuse(
                n,
                format!("weight of shape {shape:?}; a 2-D conv has [out, in, kh, kw]"),
            ));
        };
        let group = attr_i(n, "group", 1);
        if group != 1 {
            return Err(refuse(
                n,
                format!("grouped or depthwise convolution (group {group}) is not supported"),
            ));
        }
        if let Some(a) = attr(n, "auto_pad").filter(|a| !a.s.is_empty() && a.s != b"NOTSET") {
            return Err(refuse(
                n,
                format!(
                    "auto_pad {}; export with explicit pads",
                    String::from_utf8_lossy(&a.s)
                ),
            ));
        }
        let dilations = attr_ints(n, "dilations").unwrap_or_default();
        if dilations.iter().any(|&d| d != 1) {
            return Err(refuse(
                n,
                format!("dilation {dilations:?} is not supported"),
            ));
        }
        if kh != kw {
            return Err(refuse(
                n,
                format!("a {kh}x{kw} kernel; wna's convs are square"),
            ));
        }
        let strides = attr_ints(n, "strides").unwrap_or_else(|| vec![1, 1]);
        let pads = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4]);
        if strides.len() != 2 || strides[0] != strides[1] || strides[0] < 1 {
            return Err(refuse(
                n,
                format!("strides {strides:?}; wna needs equal strides"),
            ));
        }
        if pads.len() != 4 || pads.iter().any(|&p| p != pads[0] || p < 0) {
            return Err(refuse(
                n,
                format!("pads {pads:?}; wna needs the same padding on every side"),
            ));
        }
        let bias = match self.optional_constant(n, 2, "bias")? {
            Some(b) => {
                let b = b.to_f32()?;
                if b.len() != out {
                    return Err(refuse(
                        n,
                        format!("{} bias values for {out} outputs", b.len()),
                    ));
                }
                Some(b)
            }
            None => None,
        };
        Ok(ConvNode {
            out,
            cin,
            kernel: kh,
            stride: strides[0] as usize,
            padding: pads[0] as usize,
            weight: w.to_f32()?,
            shape,
            bias,
        })
    }

    /// The conv's output shape on the current map.
    fn conv_shape(&self, n: &NodeProto, c: &ConvNode) -> Result<Shape> {
        let (channels, h, w) = self.map_shape(n)?;
        if channels != c.cin {
            return Err(refuse(
                n,
                format!(
                    "its weight takes {} channels, the map has {channels}",
                    c.cin
                ),
            ));
        }
        let size = |s| {
            window(s, c.kernel, c.stride, c.padding)
                .ok_or_else(|| refuse(n, format!("a {0}x{0} kernel on a {h}x{w} map", c.kernel)))
        };
        Ok(vec![c.out, size(h)?, size(w)?])
    }

    fn conv(&mut self, n: &NodeProto) -> Result<()> {
        let c = self.conv_node(n)?;
        let shape = self.conv_shape(n, &c)?;
        let name = self.layer_name(n, "conv");
        self.add_weight(format!("{name}.weight"), c.shape, c.weight);
        let bias = c.bias.is_some();
        if let Some(b) = c.bias {
            self.add_weight(format!("{name}.bias"), vec![c.out], b);
        }
        self.layers.push(LayerSpec::Conv2d {
            name: Some(name.clone()),
            out: c.out,
            kernel: c.kernel,
            stride: c.stride,
            padding: c.padding,
            bias,
            tap: Some(name),
        });
        self.shape = shape;
        self.movable_tap = Some(self.layers.len() - 1);
        Ok(())
    }

    /// A batch norm's tensors for `channels`, its epsilon folded into the variance and a
    /// preceding layer's `bias` (when the layer's own bias is dropped) into the mean.
    pub(super) fn bn_params(
        &self,
        n: &NodeProto,
        channels: usize,
        bias: Option<&[f32]>,
    ) -> Result<BnParams> {
        if attr_i(n, "training_mode", 0) != 0 {
            return Err(refuse(
                n,
                "is in training mode; export the model in eval mode (model.eval())",
            ));
        }
        let eps = attr_f(n, "epsilon", 1e-5);
        let mut params: BnParams = Default::default();
        for (slot, (what, p)) in ["scale", "bias", "mean", "variance"]
            .into_iter()
            .zip(params.iter_mut())
            .enumerate()
        {
            *p = self.constant(n, slot + 1, what)?.to_f32()?;
            if p.len() != channels {
                return Err(refuse(
                    n,
                    format!("{} {what} values for {channels} channels", p.len()),
                ));
            }
        }
        if let Some(b) = bias {
            params[2].iter_mut().zip(b).for_each(|(m, b)| *m -= b);
        }
        for v in &mut params[3] {
            *v += eps - WNA_BN_EPS;
            if (*v + WNA_BN_EPS).is_nan() || *v + WNA_BN_EPS <= 0.0 {
                return Err(refuse(n, "a negative or NaN running variance"));
            }
        }
        Ok(params)
    }

    /// A batch norm that is the identity plus `bias`: what a conv's bias becomes where wna's
    /// layer has a batch norm and the exported graph (BN folded into the conv) has none.
    pub(super) fn bias_as_bn(channels: usize, bias: Option<Vec<f32>>) -> BnParams {
        [
            vec![1.0; channels],
            bias.unwrap_or_else(|| vec![0.0; channels]),
            vec![0.0; channels],
            vec![1.0 - WNA_BN_EPS; channels],
        ]
    }

    fn batch_norm(&mut self, n: &NodeProto) -> Result<()> {
        let channels = self.shape[0];
        let params = self.bn_params(n, channels, None)?;
        let name = self.layer_name(n, "bn");
        self.add_bn(&name, params);
        let tap = self.take_tap();
        self.layers.push(LayerSpec::BatchNorm {
            name: Some(name),
            tap,
        });
        self.movable_tap = Some(self.layers.len() - 1);
        Ok(())
    }

    fn pool(&mut self, n: &NodeProto, max: bool) -> Result<()> {
        let (c, h, w) = self.map_shape(n)?;
        let kernel = attr_ints(n, "kernel_shape").unwrap_or_default();
        let strides = attr_ints(n, "strides").unwrap_or_else(|| vec![1, 1]);
        let pads = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4]);
        let dilations = attr_ints(n, "dilations").unwrap_or_default();
        let k = kernel.first().copied().unwrap_or(0);
        let square = kernel.len() == 2 && kernel[1] == k && k >= 1;
        if !square
            || strides != [k, k]
            || pads.iter().any(|&p| p != 0)
            || dilations.iter().any(|&d| d != 1)
            || (max && k != 2)
            || n.outputs.iter().skip(1).any(|o| !o.is_empty())
        {
            let wna = if max {
                "2x2 windows with stride 2"
            } else {
                "k x k windows with stride k"
            };
            return Err(refuse(
                n,
                format!(
                    "kernel {kernel:?}, strides {strides:?}, pads {pads:?}; wna pools {wna}, \
                     unpadded"
                ),
            ));
        }
        let k = k as usize;
        let ceil = attr_i(n, "ceil_mode", 0) == 1;
        if ceil && (h % k != 0 || w % k != 0) {
            return Err(refuse(
                n,
                format!("ceil_mode on a {h}x{w} map, which {k} does not divide"),
            ));
        }
        self.layers.push(if max {
            LayerSpec::MaxPool {
                size: 2,
                stride: None,
                tap: None,
            }
        } else {
            LayerSpec::AvgPool { size: k, tap: None }
        });
        self.shape = vec![c, h / k, w / k];
        self.movable_tap = None;
        Ok(())
    }

    fn reshape(&mut self, n: &NodeProto) -> Result<()> {
        let target = self.constant(n, 1, "shape")?.to_i64()?;
        let elements: usize = self.shape.iter().product();
        let per_image = target.get(1..).unwrap_or_default();
        let same: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
        if per_image.len() == 1 && (per_image[0] == -1 || per_image[0] == elements as i64) {
            self.flatten();
        } else if per_image != same {
            return Err(refuse(
                n,
                format!(
                    "reshapes a {:?} map to {target:?}; wna converts a reshape only as a flatten \
                     ([batch, -1])",
                    self.shape
                ),
            ));
        }
        Ok(())
    }

    fn linear(
        &mut self,
        n: &NodeProto,
        mut weight: Vec<f32>,
        out: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<()> {
        let inputs = weight.len() / out.max(1);
        let permuted = match self.layout {
            Layout::FlatChannelsLast(c, h, w) if c * h * w == inputs => Some((c, h, w)),
            _ => None,
        };
        if let Some((c, h, w)) = permuted {
            // The graph's input j = (y*w + x)*c + ch is wna's ch*h*w + y*w + x.
            let old = weight.clone();
            for o in 0..out {
                for ch in 0..c {
                    for p in 0..h * w {
                        weight[o * inputs + ch * h * w + p] = old[o * inputs + p * c + ch];
                    }
                }
            }
            self.layout = Layout::ChannelsFirst;
        }
        if self.shape != [inputs] {
            return Err(refuse(
                n,
                format!(
                    "needs a flat input of {inputs} values, gets {:?}; a Flatten must come \
                     before it",
                    self.shape
                ),
            ));
        }
        let name = self.layer_name(n, "fc");
        self.add_weight(format!("{name}.weight"), vec![out, inputs], weight);
        let has_bias = bias.is_some();
        if let Some(b) = bias {
            self.add_weight(format!("{name}.bias"), vec![out], b);
        }
        self.layers.push(LayerSpec::Linear {
            name: Some(name.clone()),
            out,
            bias: has_bias,
            tap: Some(name),
        });
        self.shape = vec![out];
        self.movable_tap = Some(self.layers.len() - 1);
        Ok(())
    }

    fn gemm(&mut self, n: &NodeProto) -> Result<()> {
        if attr_i(n, "transA", 0) != 0 || self.constant_first(n) {
            return Err(refuse(n, "the data must be its first input, untransposed"));
        }
        let b = self.constant(n, 1, "weight")?;
        let [rows, cols] = b.shape()[..] else {
            return Err(refuse(n, format!("a weight of shape {:?}", b.dims)));
        };
        let alpha = attr_f(n, "alpha", 1.0);
        let beta = attr_f(n, "beta", 1.0);
        let values = b.to_f32()?;
        let (out, mut weight) = if attr_i(n, "transB", 0) == 1 {
            (rows, values)
        } else {
            (cols, transpose(&values, rows, cols))
        };
        weight.iter_mut().for_each(|v| *v *= alpha);
        let bias = match self.optional_constant(n, 2, "bias")? {
            Some(c) => {
                let c = c.to_f32()?;
                let c = match c.len() {
                    1 => vec![c[0]; out],
                    l if l == out => c,
                    l => return Err(refuse(n, format!("{l} bias values for {out} outputs"))),
                };
                Some(c.into_iter().map(|v| v * beta).collect())
            }
            None => None,
        };
        self.linear(n, weight, out, bias)
    }

    /// `x @ W`, with the `Add` of a constant bias right after it taken in.
    fn matmul(&mut self, n: &NodeProto) -> Result<String> {
        if self.constant_first(n) {
            return Err(refuse(n, "the data must be its first input (x @ W)"));
        }
        let b = self.constant(n, 1, "weight")?;
        let [rows, cols] = b.shape()[..] else {
            return Err(refuse(n, format!("a weight of shape {:?}", b.dims)));
        };
        let weight = transpose(&b.to_f32()?, rows, cols);
        let mut out = n.outputs[0].clone();
        let mut bias = None;
        if let [j] = self.users(&out)[..] {
            let add = &self.g.nodes[j];
            let constant = add.inputs.iter().find(|i| self.consts.contains_key(*i));
            if add.op_type == "Add" && self.data_inputs(add).len() == 1 {
                if let Some(c) = constant {
                    let c = self.consts[c].to_f32()?;
                    if c.len() == cols {
                        bias = Some(c);
                        out = add.outputs[0].clone();
                    }
                }
            }
        }
        self.linear(n, weight, cols, bias)?;
        Ok(out)
    }

    /// Sub, Div, Mul or Add of a scalar before the first layer: the graph's own normalisation,
    /// composed into `(x - shift) / scale`.
    fn input_scaling(&mut self, n: &NodeProto) -> Result<()> {
        if self.layers.iter().any(|l| *l != LayerSpec::Flatten) {
            return Err(refuse(
                n,
                "arithmetic with a constant inside the network; wna converts it only as input \
                 normalisation, before the first layer",
            ));
        }
        if self.constant_first(n) {
            return Err(refuse(n, "the data must be its first input (x - c, x / c)"));
        }
        let c = self.constant(n, 1, "constant")?.to_f32()?;
        let [c] = c[..] else {
            return Err(refuse(
                n,
                format!(
                    "{} constants; wna folds only one scalar into the normalisation",
                    c.len()
                ),
            ));
        };
        match n.op_type.as_str() {
            "Sub" => self.shift += c * self.scale,
            "Add" => self.shift -= c * self.scale,
            _ if c == 0.0 || !c.is_finite() => {
                return Err(refuse(n, format!("scales by {c}")));
            }
            "Div" => self.scale *= c,
            _ => self.scale /= c,
        }
        Ok(())
    }
}
