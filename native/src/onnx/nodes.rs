//! Reading ONNX nodes: attributes with their defaults, a node named in messages, the module
//! path an exporter's node name carries, constant values, and the graph's input shape.

use super::convert::Layout;
use super::proto::{AttributeProto, NodeProto, TensorProto};
use crate::error::{Error, Result};
use crate::spec::{Shape, IMAGE};

/// "Conv /layer1/layer1.0/conv1/Conv" in messages.
pub(super) fn describe(n: &NodeProto) -> String {
    format!("node \"{}\" ({})", n.name, n.op_type)
}

pub(super) fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    n.attributes.iter().find(|a| a.name == name)
}

pub(super) fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

pub(super) fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).and_then(|a| a.f).unwrap_or(default)
}

pub(super) fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

pub(super) fn refuse(n: &NodeProto, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{}: {why}", describe(n)))
}

/// A module path from an exporter's node name: "/layer1/layer1.0/conv1/Conv" gives
/// "layer1.0.conv1" (PyTorch repeats each parent's path in the next scope).
pub(super) fn module_path(node_name: &str) -> Option<String> {
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

/// The per-image input shape, `[1, 28, 28]` or `[784]`, from `[batch, ...]`, and its layout.
pub(super) fn input_shape(dims: &Option<Vec<Option<i64>>>) -> Result<(Shape, Layout)> {
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

pub(super) fn constant_value(n: &NodeProto) -> Result<TensorProto> {
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
