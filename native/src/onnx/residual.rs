//! A ResNet basic block read from the graph: two branches from one value that rejoin at an Add
//! and a Relu, matched to wna's `residual` layer, batch norms folded or not.

use super::convert::{refuse, ConvNode, Walker};
use super::proto::NodeProto;
use crate::error::Result;
use crate::spec::{window, LayerSpec};

impl Walker<'_> {
    /// The nodes from `start` up to the `Add` that joins two computed values, and that Add.
    fn branch(&self, start: usize) -> Result<(Vec<usize>, usize)> {
        let mut nodes = Vec::new();
        let mut i = start;
        loop {
            let n = &self.g.nodes[i];
            if n.op_type == "Add" && self.data_inputs(n).len() == 2 {
                return Ok((nodes, i));
            }
            nodes.push(i);
            if nodes.len() > 16 {
                return Err(refuse(
                    n,
                    "a branch of more than 16 nodes; not a basic block",
                ));
            }
            match self.users(&n.outputs[0])[..] {
                [j] => i = j,
                _ => {
                    return Err(refuse(
                        n,
                        "branches again inside a residual branch; wna converts ResNet basic \
                         blocks only",
                    ))
                }
            }
        }
    }

    /// Two branches from `input` that rejoin at an Add and a Relu: a ResNet basic block.
    pub(super) fn residual(&mut self, input: &str, a: usize, b: usize) -> Result<String> {
        let (left, join) = self.branch(a)?;
        let (right, join_b) = self.branch(b)?;
        let add = self.g.nodes[join].clone();
        if join != join_b {
            return Err(refuse(
                &add,
                format!(
                    "the two branches from \"{input}\" do not rejoin at one Add; wna converts \
                     ResNet basic blocks only"
                ),
            ));
        }
        let relu = match self.users(&add.outputs[0])[..] {
            [r] if self.g.nodes[r].op_type == "Relu" => self.g.nodes[r].clone(),
            _ => {
                return Err(refuse(
                    &add,
                    "a residual addition not followed by one Relu; wna converts ResNet basic \
                     blocks (conv, BN, ReLU, conv, BN, add, ReLU)",
                ))
            }
        };
        let ops = |nodes: &[usize]| -> Vec<NodeProto> {
            nodes
                .iter()
                .map(|&i| self.g.nodes[i].clone())
                .filter(|n| n.op_type != "Identity" && n.op_type != "Dropout")
                .collect()
        };
        let convs = |nodes: &[NodeProto]| nodes.iter().filter(|n| n.op_type == "Conv").count();
        let (mut main, mut skip) = (ops(&left), ops(&right));
        if convs(&main) < convs(&skip) {
            std::mem::swap(&mut main, &mut skip);
        }
        let not_a_block = || {
            refuse(
                &add,
                "its branches are not a ResNet basic block (conv 3x3, BN, ReLU, conv 3x3, BN; \
                 plus the input or a 1x1 conv and BN)",
            )
        };
        // The main branch: Conv, [BN], Relu, Conv, [BN].
        let mut it = main.iter().peekable();
        let conv_bn = |it: &mut std::iter::Peekable<std::slice::Iter<'_, NodeProto>>| {
            let conv = it.next().filter(|n| n.op_type == "Conv").cloned();
            let bn = it.next_if(|n| n.op_type == "BatchNormalization").cloned();
            conv.map(|c| (c, bn))
        };
        let (conv1, bn1) = conv_bn(&mut it).ok_or_else(not_a_block)?;
        if it.next().is_none_or(|n| n.op_type != "Relu") {
            return Err(not_a_block());
        }
        let (conv2, bn2) = conv_bn(&mut it).ok_or_else(not_a_block)?;
        if it.next().is_some() {
            return Err(not_a_block());
        }
        let mut it = skip.iter().peekable();
        let projection = conv_bn(&mut it);
        if it.next().is_some() || (projection.is_none() && !skip.is_empty()) {
            return Err(not_a_block());
        }

        let (cin, h, w) = self.map_shape(&conv1)?;
        let c1 = self.conv_node(&conv1)?;
        let c2 = self.conv_node(&conv2)?;
        let (out, stride) = (c1.out, c1.stride);
        let geometry = |c: &ConvNode, n: &NodeProto, k, s, p, inputs| {
            if c.kernel != k || c.stride != s || c.padding != p || c.cin != inputs || c.out != out {
                Err(refuse(
                    n,
                    format!(
                        "a {0}x{0} conv with stride {1} and padding {2} from {3} to {4} channels; \
                         a basic block needs {k}x{k}, stride {s}, padding {p}, {inputs} to {out}",
                        c.kernel, c.stride, c.padding, c.cin, c.out
                    ),
                ))
            } else {
                Ok(())
            }
        };
        geometry(&c1, &conv1, 3, stride, 1, cin)?;
        geometry(&c2, &conv2, 3, 1, 1, out)?;
        let needs_projection = cin != out || stride != 1;
        if needs_projection != projection.is_some() {
            return Err(refuse(
                &add,
                if needs_projection {
                    "the block changes width or stride but adds its input unprojected"
                } else {
                    "the block projects its input with a conv where width and stride are \
                     unchanged; wna's basic block adds the input itself there"
                },
            ));
        }
        let name = self.layer_name(&add, "block");
        let mut parts = vec![("conv1", "bn1", c1, bn1), ("conv2", "bn2", c2, bn2)];
        if let Some((conv, bn)) = projection {
            let c = self.conv_node(&conv)?;
            geometry(&c, &conv, 1, stride, 0, cin)?;
            parts.push(("proj", "proj_bn", c, bn));
        }
        for (conv_name, bn_name, c, bn) in parts {
            let params = match &bn {
                Some(bn) => self.bn_params(bn, out, c.bias.as_deref())?,
                None => Self::bias_as_bn(out, c.bias),
            };
            self.add_weight(format!("{name}.{conv_name}.weight"), c.shape, c.weight);
            self.add_bn(&format!("{name}.{bn_name}"), params);
        }
        let size = |s| {
            window(s, 3, stride, 1)
                .ok_or_else(|| refuse(&conv1, format!("a 3x3 kernel on a {h}x{w} map")))
        };
        let shape = vec![out, size(h)?, size(w)?];
        self.layers.push(LayerSpec::Residual {
            name: Some(name.clone()),
            out,
            stride,
            tap: Some(name),
        });
        self.shape = shape;
        self.movable_tap = None;
        Ok(relu.outputs[0].clone())
    }
}
