//! ONNX import: a model file read (`proto`) and converted to a wna spec and weights (`convert`).

pub mod convert;
mod layers;
mod nodes;
pub mod proto;
mod residual;

use crate::error::{Error, Result};
pub use convert::{Converted, Weight};

/// Reads and converts the ONNX model at `path`; the spec is named `name`. Errors name the file.
pub fn import(path: &str, name: &str) -> Result<Converted> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::Io(format!("onnx: cannot read {path}: {e}")))?;
    let model = proto::parse_model(&bytes)
        .map_err(|e| Error::InvalidArgument(format!("onnx: {path}: {e}")))?;
    convert::convert(&model, name).map_err(|e| Error::InvalidArgument(format!("onnx: {path}: {e}")))
}
