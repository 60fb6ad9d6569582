//! The layer conversions of the ONNX walk: a conv, batch norm, pooling, reshape, linear layer
//! (Gemm, or MatMul with its bias) or input scaling node turned into wna layers and weights.

use super::convert::*;
use super::proto::NodeProto;
use crate::error::Result;
use crate::kernels::transpose;
use crate::spec::{window, LayerSpec, Shape};

impl Walker<'_> {
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
    pub(super) fn conv_shape(&self, n: &NodeProto, c: &ConvNode) -> Result<Shape> {
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

    pub(super) fn conv(&mut self, n: &NodeProto) -> Result<()> {
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

    pub(super) fn batch_norm(&mut self, n: &NodeProto) -> Result<()> {
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

    pub(super) fn pool(&mut self, n: &NodeProto, max: bool) -> Result<()> {
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

    pub(super) fn reshape(&mut self, n: &NodeProto) -> Result<()> {
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

    pub(super) fn linear(
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

    pub(super) fn gemm(&mut self, n: &NodeProto) -> Result<()> {
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
    pub(super) fn matmul(&mut self, n: &NodeProto) -> Result<String> {
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
    pub(super) fn input_scaling(&mut self, n: &NodeProto) -> Result<()> {
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
