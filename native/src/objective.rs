//! What an attribution or a feature visualisation differentiates: one scalar per image, a
//! weighted sum of one layer's units. A class logit, a conv channel's mean activation and an
//! activation-atlas direction are all this one form, so a batch can mix them freely.

use crate::error::{Error, Result};
use crate::model::Model;
use candle_core::{DType, Tensor, Var, D};
use serde::Deserialize;
use std::collections::HashMap;

/// The name of the network's output in a [`Target`].
pub const LOGITS: &str = "logits";

/// One image's objective: `sum_c w_c * mean_{y,x} layer[c, y, x]` (an fc layer has one
/// position). `unit` is the one-hot direction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A tapped layer (see `Model.layers`) or `"logits"`.
    pub layer: String,
    pub unit: Option<usize>,
    pub direction: Option<Vec<f32>>,
}

/// Targets compiled to one weight matrix `[n, channels]` per layer they touch.
pub struct Objective {
    weights: Vec<(String, Tensor)>,
}

impl Objective {
    /// Compiles one target per image.
    pub fn new(model: &Model, targets: &[Target]) -> Result<Self> {
        let n = targets.len();
        let mut per_layer: HashMap<String, (usize, Vec<f32>)> = HashMap::new();
        for (i, t) in targets.iter().enumerate() {
            let channels = if t.layer == LOGITS {
                model.classes
            } else {
                model.layer(&t.layer)?.channels
            };
            let entry = per_layer
                .entry(t.layer.clone())
                .or_insert_with(|| (channels, vec![0f32; n * channels]));
            let row = &mut entry.1[i * channels..(i + 1) * channels];
            match (t.unit, &t.direction) {
                (Some(u), None) if u < channels => row[u] = 1.0,
                (Some(u), None) => crate::bail!(
                    InvalidArgument,
                    "target {i}: unit {u} out of range for layer {} ({channels} units)",
                    t.layer
                ),
                (None, Some(d)) if d.len() == channels && d.iter().all(|v| v.is_finite()) => {
                    row.copy_from_slice(d)
                }
                (None, Some(d)) => crate::bail!(
                    InvalidArgument,
                    "target {i}: a direction in layer {} needs {channels} finite values, got {}",
                    t.layer,
                    d.len()
                ),
                _ => crate::bail!(
                    InvalidArgument,
                    "target {i}: give either unit or direction for layer {}",
                    t.layer
                ),
            }
        }
        let mut weights = Vec::new();
        let mut names: Vec<_> = per_layer.into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (layer, (channels, w)) in names {
            weights.push((layer, Tensor::from_vec(w, (n, channels), &model.device)?));
        }
        Ok(Self { weights })
    }

    /// The same objective for rows `start..start + len` (a chunk of the batch).
    pub fn rows(&self, start: usize, len: usize) -> Result<Self> {
        let weights = self
            .weights
            .iter()
            .map(|(l, w)| Ok((l.clone(), w.narrow(0, start, len)?)))
            .collect::<Result<_>>()?;
        Ok(Self { weights })
    }

    /// The objective of the given rows, in that order (rows may repeat: the steps of a path).
    pub fn select(&self, rows: &[u32], device: &candle_core::Device) -> Result<Self> {
        let idx = Tensor::from_slice(rows, rows.len(), device)?;
        let weights = self
            .weights
            .iter()
            .map(|(l, w)| Ok((l.clone(), w.index_select(&idx, 0)?)))
            .collect::<Result<_>>()?;
        Ok(Self { weights })
    }

    /// Each touched layer's activations of a normalised batch, spatially averaged: `[n, C]`.
    fn pooled(&self, model: &Model, x: &Tensor) -> Result<HashMap<String, Tensor>> {
        let mut acts: HashMap<String, Tensor> = HashMap::new();
        let logits = model.forward_eval(x, &mut |name, t| {
            if self.weights.iter().any(|(l, _)| l == name) {
                acts.insert(name.to_string(), t.clone());
            }
            Ok(())
        })?;
        acts.insert(LOGITS.to_string(), logits);
        let mut pooled = HashMap::new();
        for (layer, _) in &self.weights {
            let a = acts.get(layer).ok_or_else(|| {
                Error::InvalidArgument(format!("objective: layer {layer} was not reached"))
            })?;
            let p = if a.rank() == 4 {
                a.mean(D::Minus1)?.mean(D::Minus1)?
            } else {
                a.clone()
            };
            pooled.insert(layer.clone(), p.to_dtype(DType::F32)?);
        }
        Ok(pooled)
    }

    /// The objective of each image of a normalised batch `[n, 1, 28, 28]` (row i scored by
    /// target i), as an `[n]` tensor that gradients flow back from.
    pub fn forward(&self, model: &Model, x: &Tensor) -> Result<Tensor> {
        let pooled = self.pooled(model, x)?;
        let mut total: Option<Tensor> = None;
        for (layer, w) in &self.weights {
            let term = (&pooled[layer] * w)?.sum(1)?;
            total = Some(match total {
                None => term,
                Some(t) => (t + term)?,
            });
        }
        total.ok_or_else(|| Error::InvalidArgument("objective: no targets".into()))
    }

    /// Every target's best value over `pixels` (pixel units) and the image that gives it:
    /// each image is scored by every target, not only its own row.
    pub fn best_over(&self, model: &Model, pixels: &[f32]) -> Result<(Vec<f32>, Vec<u32>)> {
        let targets = self
            .weights
            .first()
            .map(|(_, w)| w.dim(0))
            .transpose()?
            .unwrap_or(0);
        let mut best = vec![f32::NEG_INFINITY; targets];
        let mut index = vec![0u32; targets];
        for (c, chunk) in pixels.chunks(500 * 784).enumerate() {
            let pooled = self.pooled(model, &model.input(chunk)?)?;
            let mut scores: Option<Tensor> = None;
            for (layer, w) in &self.weights {
                let s = pooled[layer].matmul(&w.t()?)?;
                scores = Some(match scores {
                    None => s,
                    Some(t) => (t + s)?,
                });
            }
            let Some(scores) = scores else { break };
            let rows: Vec<Vec<f32>> = scores.to_vec2()?;
            for (j, row) in rows.iter().enumerate() {
                for (t, &v) in row.iter().enumerate() {
                    if v > best[t] {
                        best[t] = v;
                        index[t] = (c * 500 + j) as u32;
                    }
                }
            }
        }
        Ok((best, index))
    }

    /// Objective values and their gradients with respect to the pixels of `pixels`
    /// (`[n, 784]`, pixel units, before normalisation).
    pub fn gradients(&self, model: &Model, pixels: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = pixels.dim(0)?;
        let x = Var::from_tensor(&pixels.reshape((n, 1, 28, 28))?)?;
        let values = self.forward(model, &model.normalise(x.as_tensor())?)?;
        let grads = values.sum_all()?.backward()?;
        let gx = grads.get(x.as_tensor()).ok_or_else(|| {
            Error::InvalidArgument("objective: it does not depend on the input".into())
        })?;
        Ok((gx.flatten_all()?.to_vec1()?, values.to_vec1()?))
    }
}
