//! A model's life across the boundary (`ffi/model.ts`): create from a built-in name or a spec,
//! describe, save and load, predict, read a layer, stimulate a channel, free any handle.

use super::{export, insert, slice, slice_mut, text, with_model, write_text, Object};
use crate::error::Result;
use crate::model::{self, Model, Stimulation};
use crate::models::builtin::{self, MODEL_NAMES};
use crate::models::LayerInfo;
use crate::noise::PIXELS;
use crate::optim::{Kind, Optimizer};
use crate::spec::NetSpec;
use serde::{Deserialize, Serialize};

/// Images per forward pass of `predict` and `activations`: bounds their working memory.
const CHUNK_IMAGES: usize = 1000;

/// `Model.create`'s options: a built-in `model` by name (with its `classes`, and `blocks` for
/// `larger`), or a whole `spec`. Nothing defaults here: `ffi/model.ts` sends every setting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ModelOptions {
    model: Option<String>,
    spec: Option<NetSpec>,
    classes: Option<usize>,
    blocks: Option<Vec<usize>>,
    seed: u64,
    mean: f32,
    std: f32,
    device: String,
}

impl ModelOptions {
    /// The spec to build: the one given, or the named built-in's.
    fn net_spec(&self) -> Result<NetSpec> {
        match (&self.model, &self.spec) {
            (Some(name), None) => {
                let blocks = match self.blocks.as_deref() {
                    None => None,
                    Some(&[a, b, c, d]) => Some([a, b, c, d]),
                    Some(b) => crate::bail!(
                        InvalidArgument,
                        "model: blocks needs 4 numbers (one per stage), got {}",
                        b.len()
                    ),
                };
                let Some(classes) = self.classes else {
                    crate::bail!(
                        InvalidArgument,
                        "model: missing field `classes`: built-in {name} needs its class count"
                    );
                };
                builtin::spec(name, classes, blocks)
            }
            (None, Some(spec)) => {
                if self.classes.is_some() || self.blocks.is_some() {
                    crate::bail!(
                        InvalidArgument,
                        "model: classes and blocks apply to built-in models; a spec sets them in \
                         its layers"
                    );
                }
                spec.shapes()?;
                Ok(spec.clone())
            }
            _ => crate::bail!(
                InvalidArgument,
                "model: give either a built-in model name or a spec, not {}",
                if self.model.is_some() {
                    "both"
                } else {
                    "neither"
                }
            ),
        }
    }
}

/// What `wna_model_info` returns.
#[derive(Serialize)]
struct ModelInfo<'a> {
    model: &'a str,
    classes: u64,
    spec: &'a NetSpec,
    parameters: u64,
    layers: &'a [LayerInfo],
    mean: f32,
    std: f32,
    device: &'static str,
    step: u64,
}

export! {
    /// The built-in networks' names, as a JSON array.
    fn wna_models(buf: *mut u8, cap: usize, len_out: *mut usize) {
        write_text(&serde_json::to_string(&MODEL_NAMES)?, buf, cap, len_out)
    }
}

export! {
    fn wna_model_new(spec: *const u8, spec_len: usize, handle_out: *mut u64) {
        let o: ModelOptions = super::options(spec, spec_len, "model")?;
        let device = model::device(&o.device)?;
        let m = Model::new(o.net_spec()?, device, o.seed, o.mean, o.std)?;
        insert(Object::Model(Box::new(m)), handle_out)
    }
}

export! {
    /// Frees any handle: a model, an array set, a population or a data-noise fit.
    fn wna_free(handle: u64) {
        super::remove(handle)
    }
}

export! {
    fn wna_model_info(handle: u64, buf: *mut u8, cap: usize, len_out: *mut usize) {
        let info = with_model(handle, |m| {
            let layers = m.layers();
            Ok(serde_json::to_string(&ModelInfo {
                model: &m.spec.name,
                classes: m.classes as u64,
                spec: &m.spec,
                parameters: m.param_count() as u64,
                layers: &layers,
                mean: m.mean,
                std: m.std,
                device: if m.device.is_cuda() { "cuda" } else { "cpu" },
                step: m.optimizer.as_ref().map_or(0, |o| o.step),
            })?)
        })?;
        write_text(&info, buf, cap, len_out)
    }
}

export! {
    /// `what`: 0 weights, 1 optimiser state. `save`: 1 to save, 0 to load.
    fn wna_model_io(handle: u64, path: *const u8, path_len: usize, what: u32, save: u32) {
        let path = text(path, path_len, "path")?;
        with_model(handle, |m| match (what, save) {
            (0, 1) => m.save(path),
            (0, _) => m.load(path),
            (_, 1) => match &m.optimizer {
                Some(o) => o.save(path),
                None => crate::bail!(
                    InvalidArgument,
                    "optimizer: nothing to save before the first training epoch"
                ),
            },
            (_, _) => {
                // `load` sets the kind the file records.
                let mut o = Optimizer::new(Kind::ADAM, 0.0);
                o.load(path, &m.device.clone())?;
                m.optimizer = Some(o);
                Ok(())
            }
        })
    }
}

export! {
    fn wna_predict(handle: u64, pixels: *const f32, n_values: usize, out: *mut f32, out_len: usize) {
        let px = slice(pixels, n_values, "images")?;
        let out = slice_mut(out, out_len, "logits")?;
        with_model(handle, |m| {
            model::check_images("predict", px)?;
            let mut logits = Vec::with_capacity(out.len());
            for chunk in px.chunks(CHUNK_IMAGES * PIXELS) {
                logits.extend(m.logits(&m.input(chunk)?)?.flatten_all()?.to_vec1::<f32>()?);
            }
            super::copy_out(out, &logits, "logits")
        })
    }
}

export! {
    fn wna_activations(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        layer: *const u8,
        layer_len: usize,
        out: *mut f32,
        out_len: usize,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let layer = text(layer, layer_len, "layer")?;
        let out = slice_mut(out, out_len, "activations")?;
        with_model(handle, |m| {
            m.layer(layer)?;
            let mut acts = Vec::with_capacity(out.len());
            for chunk in px.chunks(CHUNK_IMAGES * PIXELS) {
                m.forward_eval(&m.input(chunk)?, &mut |name, t| {
                    if name == layer {
                        acts.extend(t.flatten_all()?.to_vec1::<f32>()?);
                    }
                    Ok(())
                })?;
            }
            super::copy_out(out, &acts, "activations")
        })
    }
}

export! {
    /// `channel` < 0 clears the stimulation.
    fn wna_set_stimulation(handle: u64, layer: *const u8, layer_len: usize, channel: i64, delta: f32) {
        let layer = text(layer, layer_len, "layer")?.to_string();
        with_model(handle, |m| {
            if channel < 0 {
                m.stimulation = None;
                return Ok(());
            }
            let info = m.layer(&layer)?;
            if channel as usize >= info.channels || !delta.is_finite() {
                crate::bail!(
                    InvalidArgument,
                    "stimulate: need channel < {} and a finite delta for {layer}, got {channel} \
                     and {delta}",
                    info.channels
                );
            }
            m.stimulation = Some(Stimulation { layer, channel: channel as usize, delta });
            Ok(())
        })
    }
}

export! {
    /// Deliberately panics: lets the tests prove a panic becomes an error, not a crash.
    fn wna_debug_panic() {
        panic!("debug panic requested")
    }
}
