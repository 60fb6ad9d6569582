//! An ONNX image classifier turned into a wna spec plus weights under wna's names, so that every
//! analysis (noise maps, STA, FGSM's input gradients, feedback, templates) runs it on wna's own
//! checked kernels and autograd. Not an ONNX interpreter: the graph is walked from its input
//! along one path, each node mapped to a spec layer, and a branch that rejoins at an `Add` is
//! read as a ResNet basic block. What does not map is refused with the op and the node's name.

pub(super) use super::nodes::*;
use super::proto::{GraphProto, ModelProto, NodeProto, TensorProto};
use crate::error::{Error, Result};

use crate::spec::{LayerSpec, NetSpec, Shape, IMAGE};
use std::collections::{HashMap, HashSet};

/// wna's batch-norm epsilon; ONNX files state their own, which is folded into the running
/// variance.
pub(super) const WNA_BN_EPS: f32 = crate::layers::BN_EPS as f32;

/// The ops the converter maps, for the error that meets any other.
pub const SUPPORTED: &str = "Conv, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, Mish, \
     MaxPool (2x2, stride 2), AveragePool (k x k, stride k), GlobalAveragePool, Flatten, Reshape, \
     Squeeze, Gemm, MatMul (+ Add bias), Add (ResNet basic blocks), Dropout, Identity, Constant, \
     a final Softmax/LogSoftmax, Sub/Div/Mul/Add by a scalar on the input, and Transpose between \
     channels-last and channels-first (tf2onnx's Keras layout)";

/// Where the graph's data layout stands. wna's maps are channels-first throughout; a
/// channels-last graph (Keras through tf2onnx) is followed while its transposes cancel out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Layout {
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
    pub(super) consts: HashMap<String, TensorProto>,
    /// Nodes (by index) that read each value as data, not as a constant.
    pub(super) consumers: HashMap<String, Vec<usize>>,
    /// The graph's image input and its logits output.
    pub(super) start: String,
    pub(super) output: String,
    pub(super) layers: Vec<LayerSpec>,
    pub(super) weights: Vec<Weight>,
    pub(super) used_names: HashSet<String>,
    /// The per-image shape after the layers so far.
    pub(super) shape: Shape,
    /// The layer whose tap moves onto a batch norm or activation right after it, so that a
    /// conv's tap sees its rectified output, as in wna's own nets.
    pub(super) movable_tap: Option<usize>,
    pub(super) layout: Layout,
    pub(super) shift: f32,
    pub(super) scale: f32,
    pub(super) notes: Vec<String>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(g: &'a GraphProto) -> Result<Self> {
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
    pub(super) fn constant_first(&self, n: &NodeProto) -> bool {
        n.inputs
            .first()
            .is_some_and(|i| self.consts.contains_key(i))
    }

    pub(super) fn constant(&self, n: &NodeProto, slot: usize, what: &str) -> Result<&TensorProto> {
        self.optional_constant(n, slot, what)?
            .ok_or_else(|| refuse(n, format!("has no {what} input")))
    }

    pub(super) fn optional_constant(
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

    pub(super) fn walk(&mut self) -> Result<()> {
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
    pub(super) fn step(&mut self, i: usize) -> Result<String> {
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
    pub(super) fn transpose(&mut self, n: &NodeProto) -> Result<()> {
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
    pub(super) fn check_layout(&mut self, n: &NodeProto) -> Result<()> {
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
    pub(super) fn take_tap(&mut self) -> Option<String> {
        match self.layers.get_mut(self.movable_tap?)? {
            LayerSpec::Conv2d { tap, .. }
            | LayerSpec::Linear { tap, .. }
            | LayerSpec::BatchNorm { tap, .. } => tap.take(),
            _ => None,
        }
    }

    pub(super) fn activation(&mut self, mut layer: LayerSpec) {
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

    pub(super) fn flatten(&mut self) {
        if self.shape.len() > 1 {
            self.layers.push(LayerSpec::Flatten);
            self.shape = vec![self.shape.iter().product()];
        }
        self.movable_tap = None;
    }
}
