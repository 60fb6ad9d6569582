//! Training and evaluation across the boundary (`ffi/train.ts`).

use super::{export, slice, slice_mut, with_model};
use crate::optim::Kind;
use crate::progress::Progress;
use crate::train::{self, Metrics, TrainConfig};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OptimizerName {
    Adam,
    Sgd,
    Adadelta,
}

/// One training epoch's options. Every field is required: the defaults live in `ffi/train.ts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TrainOptions {
    batch_size: usize,
    lr_max: f64,
    lr_min: f64,
    weight_decay: f64,
    total_steps: u64,
    optimizer: OptimizerName,
    momentum: f64,
    nesterov: bool,
    seed: u64,
    epoch: u64,
    mixup: bool,
}

impl TrainOptions {
    fn config(&self) -> TrainConfig {
        let optimizer = match self.optimizer {
            OptimizerName::Adam => Kind::ADAM,
            OptimizerName::Sgd => Kind::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterov,
            },
            OptimizerName::Adadelta => Kind::ADADELTA,
        };
        TrainConfig {
            batch_size: self.batch_size,
            lr_max: self.lr_max,
            lr_min: self.lr_min,
            weight_decay: self.weight_decay,
            total_steps: self.total_steps,
            optimizer,
            seed: self.seed,
            epoch: self.epoch,
            mixup: self.mixup,
        }
    }
}

/// Writes `[loss, accuracy]`.
unsafe fn write_metrics(out: *mut f64, m: Metrics) -> crate::error::Result<()> {
    slice_mut(out, 2, "metrics")?.copy_from_slice(&[m.loss, m.accuracy]);
    Ok(())
}

export! {
    fn wna_train_epoch(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        labels: *const u8,
        n_labels: usize,
        options: *const u8,
        options_len: usize,
        progress: *mut u64,
        metrics_out: *mut f64,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let cfg = super::options::<TrainOptions>(options, options_len, "train")?.config();
        let metrics = with_model(handle, |m| {
            train::train_epoch(m, px, lb, &cfg, Progress::from_ptr(progress))
        })?;
        write_metrics(metrics_out, metrics)
    }
}

export! {
    fn wna_evaluate(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        labels: *const u8,
        n_labels: usize,
        progress: *mut u64,
        metrics_out: *mut f64,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let metrics = with_model(handle, |m| {
            train::evaluate(m, px, lb, Progress::from_ptr(progress))
        })?;
        write_metrics(metrics_out, metrics)
    }
}
