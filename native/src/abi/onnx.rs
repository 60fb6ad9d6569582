//! ONNX import across the boundary (`ffi/onnx.ts`).

use super::{export, text, write_text};
use crate::error::Error;
use crate::spec::NetSpec;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `convertOnnx`'s request: the ONNX file, where its converted weights go, and the spec's name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OnnxRequest {
    path: String,
    weights: String,
    name: String,
}

/// What the conversion reports: the spec, the graph's own input normalisation, notes on what
/// was folded or dropped, and where the file came from.
#[derive(Serialize)]
struct OnnxSummary<'a> {
    spec: &'a NetSpec,
    shift: f32,
    scale: f32,
    notes: &'a [String],
    producer: &'a str,
    opset: i64,
}

export! {
    /// Converts an ONNX classifier to a wna spec, writes its weights under wna's names as
    /// safetensors at `weights` (whole or not at all), and returns the summary as JSON.
    fn wna_onnx_import(
        request: *const u8,
        request_len: usize,
        buf: *mut u8,
        cap: usize,
        len_out: *mut usize,
    ) {
        let o: OnnxRequest = super::parse(text(request, request_len, "onnx request")?, "onnx")?;
        let c = crate::onnx::import(&o.path, &o.name)?;
        let mut tensors = HashMap::new();
        for w in c.weights {
            tensors.insert(w.name, Tensor::from_vec(w.values, w.shape, &Device::Cpu)?);
        }
        let partial = format!("{}.partial", o.weights);
        candle_core::safetensors::save(&tensors, &partial)
            .and_then(|_| std::fs::rename(&partial, &o.weights).map_err(Into::into))
            .map_err(|e| Error::Io(format!("onnx: cannot write {}: {e}", o.weights)))?;
        let summary = OnnxSummary {
            spec: &c.spec,
            shift: c.shift,
            scale: c.scale,
            notes: &c.notes,
            producer: &c.producer,
            opset: c.opset,
        };
        write_text(&serde_json::to_string(&summary)?, buf, cap, len_out)
    }
}
