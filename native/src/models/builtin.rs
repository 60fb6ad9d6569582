//! The built-in networks, written as specs: `smaller`, `larger`, `mlp`, `logreg` and the FGSM
//! case-study nets `n1`/`n2` (same architecture, Adam vs SGD) and `n3`, and the recurrent `rnn`
//! and `lstm`, which read an image row by row, and `lenet5`, the confidence study's classifier.
//! Parameter and tap names are those of the hand-written modules they replace, so older
//! checkpoints still load.

use crate::error::{Error, Result};
use crate::spec::NetSpec;
use serde_json::{json, Value};

pub const MODEL_NAMES: [&str; 10] = [
    "smaller", "larger", "mlp", "logreg", "n1", "n2", "n3", "rnn", "lstm", "lenet5",
];

/// `larger`'s stage widths and first-block strides; `blocks` says how many blocks per stage.
pub const LARGER_WIDTHS: [usize; 4] = [16, 32, 64, 128];
pub const LARGER_STRIDES: [usize; 4] = [1, 1, 2, 1];
pub const LARGER_BLOCKS: [usize; 4] = [2, 1, 3, 2];

/// The spec of a built-in network.
pub fn spec(name: &str, classes: usize, blocks: Option<[usize; 4]>) -> Result<NetSpec> {
    if classes < 2 {
        crate::bail!(
            InvalidArgument,
            "model: classes must be >= 2, got {classes}"
        );
    }
    if blocks.is_some() && name != "larger" {
        crate::bail!(
            InvalidArgument,
            "model: blocks only applies to larger, not {name}"
        );
    }
    let layers = match name {
        // Two 3x3 conv blocks with batch norm and 2x2 max-pooling, then a BN'd hidden layer.
        "smaller" => json!([
            {"kind": "conv2d", "name": "conv1", "out": 32, "kernel": 3},
            {"kind": "batch_norm", "name": "bn1"},
            {"kind": "relu", "tap": "conv1"},
            {"kind": "max_pool", "size": 2},
            {"kind": "conv2d", "name": "conv2", "out": 64, "kernel": 3},
            {"kind": "batch_norm", "name": "bn2"},
            {"kind": "relu", "tap": "conv2"},
            {"kind": "max_pool", "size": 2},
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc1", "out": 256},
            {"kind": "batch_norm", "name": "bn3"},
            {"kind": "relu", "tap": "fc1"},
            {"kind": "linear", "name": "fc2", "out": classes},
        ]),
        "larger" => larger(classes, blocks.unwrap_or(LARGER_BLOCKS))?,
        "mlp" => json!([
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc1", "out": 1000},
            {"kind": "relu", "tap": "fc1"},
            {"kind": "linear", "name": "fc2", "out": classes},
        ]),
        "logreg" => json!([
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc", "out": classes},
        ]),
        // 8x8 and 6x6 convs with average pooling, dropout, FC 800-512-512.
        "n1" | "n2" => json!([
            {"kind": "conv2d", "name": "conv1", "out": 16, "kernel": 8, "padding": 2},
            {"kind": "relu", "tap": "conv1"},
            {"kind": "avg_pool", "size": 2},
            {"kind": "conv2d", "name": "conv2", "out": 32, "kernel": 6, "padding": 2},
            {"kind": "relu", "tap": "conv2"},
            {"kind": "avg_pool", "size": 2},
            {"kind": "flatten"},
            {"kind": "dropout", "p": 0.5},
            {"kind": "linear", "name": "fc1", "out": 512},
            {"kind": "relu", "tap": "fc1"},
            {"kind": "linear", "name": "fc2", "out": 512},
            {"kind": "relu", "tap": "fc2"},
            {"kind": "linear", "name": "fc3", "out": classes},
        ]),
        // One 5x5 conv, dropout, FC 12544-1024-512.
        "n3" => json!([
            {"kind": "conv2d", "name": "conv1", "out": 16, "kernel": 5, "padding": 2},
            {"kind": "relu", "tap": "conv1"},
            {"kind": "flatten"},
            {"kind": "dropout", "p": 0.5},
            {"kind": "linear", "name": "fc1", "out": 1024},
            {"kind": "relu", "tap": "fc1"},
            {"kind": "linear", "name": "fc2", "out": 512},
            {"kind": "relu", "tap": "fc2"},
            {"kind": "linear", "name": "fc3", "out": classes},
        ]),
        // The classic sequential MNIST classifiers: 28 rows of 28 pixels through two stacked
        // recurrent layers of 128, the last state to a linear read-out.
        "rnn" | "lstm" => json!([
            {"kind": "rnn", "name": "rnn", "cell": if name == "rnn" { "tanh" } else { "lstm" },
             "hidden": 128, "layers": 2, "tap": "rnn"},
            {"kind": "linear", "name": "fc", "out": classes},
        ]),
        // LeNet-5 as the confidence study builds it (no normalisation, no padding). The taps are
        // the study's data flow: maxpool2, and fc1, fc2 and fc3 before their activations (what
        // a forward hook on those modules sees). `population::lenet` trains the same network by
        // hand, with these parameter names.
        "lenet5" => json!([
            {"kind": "conv2d", "name": "conv1", "out": 6, "kernel": 5},
            {"kind": "relu"},
            {"kind": "max_pool", "size": 2},
            {"kind": "conv2d", "name": "conv2", "out": 16, "kernel": 5},
            {"kind": "relu"},
            {"kind": "max_pool", "size": 2, "tap": "pool2"},
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc1", "out": 120, "tap": "fc1"},
            {"kind": "relu"},
            {"kind": "linear", "name": "fc2", "out": 84, "tap": "fc2"},
            {"kind": "relu"},
            {"kind": "linear", "name": "fc3", "out": classes, "tap": "logits"},
        ]),
        other => return Err(Error::UnknownModel(other.to_string())),
    };
    let spec = NetSpec {
        name: name.to_string(),
        input: crate::spec::IMAGE.to_vec(),
        output: crate::spec::Output::Logits,
        layers: serde_json::from_value(layers)
            .map_err(|e| Error::InvalidArgument(format!("built-in spec {name}: {e}")))?,
    };
    spec.shapes()?;
    Ok(spec)
}

/// A small ResNet for 28x28: a 7x7/2 stem, four stages of basic blocks at widths 16/32/64/128
/// and sizes 14/14/7/7, global average pooling, linear.
fn larger(classes: usize, blocks: [usize; 4]) -> Result<Value> {
    if blocks.iter().any(|&b| b == 0 || b > 16) {
        crate::bail!(
            InvalidArgument,
            "larger: blocks per stage must be 1..=16, got {blocks:?}"
        );
    }
    let mut layers = vec![
        json!({"kind": "conv2d", "name": "stem", "out": 16, "kernel": 7, "stride": 2, "padding": 3}),
        json!({"kind": "batch_norm", "name": "stem_bn"}),
        json!({"kind": "relu", "tap": "stem"}),
    ];
    for (s, &n) in blocks.iter().enumerate() {
        for b in 0..n {
            let name = format!("stage{}.{b}", s + 1);
            let stride = if b == 0 { LARGER_STRIDES[s] } else { 1 };
            layers.push(
                json!({"kind": "residual", "name": name, "out": LARGER_WIDTHS[s],
                "stride": stride, "tap": name}),
            );
        }
    }
    layers.push(json!({"kind": "global_avg_pool"}));
    layers.push(json!({"kind": "linear", "name": "fc", "out": classes}));
    Ok(Value::Array(layers))
}
