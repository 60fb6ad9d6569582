//! The analysis loop: stimuli streamed through the model batch by batch, with class sums
//! (classification images, bias histogram) and per-layer sums accumulated as they pass.

use super::device_sum::DeviceSum;
use super::fused::{split_totals, FusedRun};
use super::layer_sums::{weighted_mean, LayerSums};
use super::phases::Phases;
use super::stimuli::{NoiseKind, Stimuli};
use super::{PIXELS, SIDE};
use crate::arrays::Arrays;
use crate::error::{Error, Result};
use crate::model::{check_images, Model};
use crate::models::LayerInfo;
use crate::progress::Progress;
use candle_core::{DType, Device, Tensor, D};
use std::collections::HashMap;

/// What one analysis streams and keeps.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Noise samples when no images are given.
    pub samples: u64,
    pub batch_size: usize,
    pub seed: u64,
    pub noise: NoiseKind,
    /// Stimulus = gamma * image + (1 - gamma) * noise (gamma = 0 without images).
    pub gamma: f32,
    /// Top softmax above which a sample enters the thresholded classification image.
    pub threshold: f32,
    /// Samples (from the first) whose layer activations feed STA and activation statistics.
    pub sta_samples: u64,
    /// Layers to analyse (the logits too, when named); empty means every layer but the logits.
    pub layers: Vec<String>,
    /// The first this many stimuli are returned as `stimuli`, to show what the network saw.
    pub keep_stimuli: usize,
}

/// The exact part of an analysis: the sample count, the bias histogram (samples per predicted
/// class), the softmax mass per class and the confident samples per class. The class images are
/// means over these, so shards merge by weighting each image with its count.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSummary {
    pub samples: u64,
    pub counts: Vec<u64>,
    pub weight_sums: Vec<f64>,
    pub threshold_counts: Vec<u64>,
}

/// Checks what every stimulus stream needs: batch size, sample count, gamma, noise parameters.
pub(crate) fn check_stream(
    op: &str,
    batch_size: usize,
    samples: u64,
    gamma: f32,
    noise: &NoiseKind,
    images: Option<&[f32]>,
) -> Result<()> {
    if batch_size == 0 || batch_size > 65_536 {
        crate::bail!(
            InvalidArgument,
            "{op}: batch size must be in 1..=65536, got {batch_size}"
        );
    }
    if images.is_none() && samples == 0 {
        crate::bail!(InvalidArgument, "{op}: samples must be > 0, got 0");
    }
    if !(0.0..=1.0).contains(&gamma) {
        crate::bail!(
            InvalidArgument,
            "{op}: gamma must be in [0, 1], got {gamma}"
        );
    }
    match noise {
        NoiseKind::Gaussian { mean, std }
            if !(mean.is_finite() && std.is_finite() && *std > 0.0) =>
        {
            crate::bail!(
                InvalidArgument,
                "{op}: gaussian noise needs a finite mean and std > 0, got {mean} and {std}"
            )
        }
        NoiseKind::Data { contrast, .. } if !(contrast.is_finite() && *contrast > 0.0) => {
            crate::bail!(
                InvalidArgument,
                "{op}: data noise needs a finite contrast > 0, got {contrast}"
            )
        }
        _ => {}
    }
    if let Some(images) = images {
        check_images(op, images)?;
    }
    Ok(())
}

fn check_config(model: &Model, cfg: &AnalysisConfig, images: Option<&[f32]>) -> Result<()> {
    check_stream(
        "noise-maps",
        cfg.batch_size,
        cfg.samples,
        cfg.gamma,
        &cfg.noise,
        images,
    )?;
    if !cfg.threshold.is_finite() {
        crate::bail!(
            InvalidArgument,
            "noise-maps: threshold must be finite, got {}",
            cfg.threshold
        );
    }
    for l in &cfg.layers {
        model.layer(l)?;
    }
    Ok(())
}

/// Streams stimuli through `model` and returns the accumulated maps.
///
/// Summary: [`AnalysisSummary`]. Arrays: `classImages`, `weightedImages`, `thresholdImages`,
/// `stimulusMean`, and per analysed layer `sta/<layer>/...` and
/// `act/<layer>/...`; with images also `predictions` and `confidence`.
pub fn analyse(
    model: &Model,
    images: Option<&[f32]>,
    cfg: &AnalysisConfig,
    progress: Progress,
) -> Result<Arrays> {
    check_config(model, cfg, images)?;
    let classes = model.classes;
    let total = images.map_or(cfg.samples, |im| (im.len() / PIXELS) as u64);
    let layer_infos: Vec<LayerInfo> = model
        .layers()
        .into_iter()
        // Every hidden layer by default; the logits only when asked for by name.
        .filter(|l| match cfg.layers.is_empty() {
            true => l.name != "logits",
            false => cfg.layers.contains(&l.name),
        })
        .collect();
    let mut layers: HashMap<String, LayerSums> = layer_infos
        .iter()
        .map(|l| Ok((l.name.clone(), LayerSums::new(l.clone(), &model.device)?)))
        .collect::<Result<_>>()?;
    // The class sums stay on the model's device until the run ends.
    let mut class_sums = DeviceSum::zeros(3 * classes * PIXELS, &model.device)?;
    let mut counts = DeviceSum::zeros(3 * classes, &model.device)?;
    let mut stimulus_sum = DeviceSum::zeros(PIXELS, &model.device)?;
    let mut predictions = Vec::new();
    let mut confidence = Vec::new();
    let mut buf = vec![0f32; cfg.batch_size * PIXELS];
    let mut kept = Vec::new();
    progress.start(total);
    let mut phases = Phases::new(&model.device);
    let stimuli = Stimuli::new(
        images,
        cfg.gamma,
        &cfg.noise,
        cfg.seed,
        None,
        0.0,
        &model.device,
    )?;
    // Pure noise on a GPU through a net of `smaller`'s shape: batches that feed no layer
    // statistics and keep no stimuli run on the fused kernels.
    let fused = match images {
        None => FusedRun::new(model, &cfg.noise, cfg.seed, cfg.threshold)?,
        Some(_) => None,
    };
    let mut first = 0u64;
    while first < total {
        let b = (total - first).min(cfg.batch_size as u64) as usize;
        let keep = (cfg.keep_stimuli as u64).min(total).saturating_sub(first) as usize;
        // Only the first `sta_samples` samples feed the layer statistics, whatever the batching.
        let sta_rows = (cfg.sta_samples.saturating_sub(first) as usize).min(b);
        if let (Some(run), 0, 0) = (fused.as_ref(), sta_rows, keep) {
            let (images, weights, stimulus) = split_totals(&run.batch(first, b)?, classes)?;
            class_sums.add(&images)?;
            counts.add(&weights)?;
            stimulus_sum.add(&stimulus)?;
            phases.lap("fused kernels")?;
            first += b as u64;
            progress.advance(b as u64);
            continue;
        }
        let x = stimuli.batch(first, b)?;
        // Only the rows the host needs (STA patches, kept stimuli) come back from the device.
        let host = sta_rows.max(keep.min(b));
        if host > 0 {
            buf[..host * PIXELS].copy_from_slice(&x.narrow(0, 0, host)?.flatten_all()?.to_vec1()?);
        }
        let pixels = &buf[..host * PIXELS];
        kept.extend_from_slice(&pixels[..keep.min(b) * PIXELS]);
        phases.lap("stimuli")?;
        // In f64 once per batch for every analysed layer (see `LayerSums::add`).
        let (x_sta, px_sta) = (
            x.narrow(0, 0, sta_rows.max(1))?.to_dtype(DType::F64)?,
            &pixels[..sta_rows * PIXELS],
        );
        let mut err = Ok(());
        let logits = model.forward_eval(
            &model.normalise(&x.reshape((b, 1, SIDE, SIDE))?)?,
            &mut |name, t| {
                if phases.on {
                    if let Err(e) = phases.lap(&format!("forward to {name}")) {
                        err = Err(e);
                    }
                }
                if sta_rows > 0 && err.is_ok() {
                    if let Some(sums) = layers.get_mut(name) {
                        err = t
                            .narrow(0, 0, sta_rows)
                            .map_err(Error::from)
                            .and_then(|t| sums.add(&t, &x_sta, px_sta));
                    }
                }
                Ok(())
            },
        )?;
        err?;
        // One matmul accumulates all three class-image variants and the plain sum of the
        // stimuli: rows of W are the one-hot prediction, the softmax, the one-hot prediction
        // gated by the confidence threshold, and ones (candle's column sum, `x.sum(0)`, had been
        // 5% of an `rnn`'s white-noise run).
        phases.lap("layer statistics")?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?;
        let pred = probs.argmax(D::Minus1)?;
        let top = probs.max(D::Minus1)?;
        let onehot = one_hot(&pred, classes, &model.device)?;
        let confident = top
            .gt(cfg.threshold as f64)?
            .to_dtype(DType::F32)?
            .unsqueeze(1)?;
        let ones = Tensor::ones((b, 1), DType::F32, &model.device)?;
        let w = Tensor::cat(&[&onehot, &probs, &onehot.broadcast_mul(&confident)?], 1)?; // [b, 3C]
        let sums = Tensor::cat(&[&w, &ones], 1)?.t()?.matmul(&x)?; // [3C + 1, PIXELS]
        class_sums.add(&sums.narrow(0, 0, 3 * classes)?)?;
        stimulus_sum.add(&sums.narrow(0, 3 * classes, 1)?)?;
        counts.add(&w.sum(0)?)?;
        if images.is_some() {
            predictions.extend(pred.to_vec1::<u32>()?.into_iter().map(|p| p as f32));
            confidence.extend(top.to_vec1::<f32>()?);
        }
        phases.lap("class sums")?;
        first += b as u64;
        progress.advance(b as u64);
    }
    phases.report(total);
    let (class_sums, counts, stimulus_sum) =
        (class_sums.read()?, counts.read()?, stimulus_sum.read()?);
    // Normalise the sums into means and name the outputs.
    let mut out = Arrays::default();
    let c = classes;
    let part = |k: usize| &class_sums[k * c * PIXELS..(k + 1) * c * PIXELS];
    let weights = |k: usize| &counts[k * c..(k + 1) * c];
    let as_counts = |w: &[f64]| w.iter().map(|&v| v as u64).collect();
    out.set_summary(&AnalysisSummary {
        samples: total,
        counts: as_counts(weights(0)),
        weight_sums: weights(1).to_vec(),
        threshold_counts: as_counts(weights(2)),
    })?;
    out.insert(
        "classImages",
        vec![c, SIDE, SIDE],
        weighted_mean(part(0), weights(0), PIXELS),
    );
    out.insert(
        "weightedImages",
        vec![c, SIDE, SIDE],
        weighted_mean(part(1), weights(1), PIXELS),
    );
    out.insert(
        "thresholdImages",
        vec![c, SIDE, SIDE],
        weighted_mean(part(2), weights(2), PIXELS),
    );
    out.insert(
        "stimulusMean",
        vec![SIDE, SIDE],
        stimulus_sum
            .iter()
            .map(|&v| (v / total as f64) as f32)
            .collect(),
    );
    if !kept.is_empty() {
        out.insert("stimuli", vec![kept.len() / PIXELS, SIDE, SIDE], kept);
    }
    for info in &layer_infos {
        layers[&info.name].write(&mut out)?;
    }
    if images.is_some() {
        out.insert("predictions", vec![predictions.len()], predictions);
        out.insert("confidence", vec![confidence.len()], confidence);
    }
    Ok(out)
}

fn one_hot(pred: &Tensor, classes: usize, device: &Device) -> Result<Tensor> {
    let n = pred.dim(0)?;
    let ids = Tensor::arange(0u32, classes as u32, device)?
        .reshape((1, classes))?
        .broadcast_as((n, classes))?;
    Ok(ids
        .eq(&pred.reshape((n, 1))?.broadcast_as((n, classes))?)?
        .to_dtype(DType::F32)?)
}
