//! Training one epoch and evaluating: cross-entropy, cosine-annealed learning rate.

use crate::error::{Error, Result};
use crate::model::{check_images, Model};
use crate::optim::{Kind, Optimizer};
use crate::philox::{permutation, Philox};
use crate::progress::Progress;
use candle_core::{DType, Tensor, D};

#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub lr_max: f64,
    pub lr_min: f64,
    pub weight_decay: f64,
    /// Steps of the whole run: the cosine schedule reaches `lr_min` there.
    pub total_steps: u64,
    pub optimizer: Kind,
    pub seed: u64,
    pub epoch: u64,
    /// MixUp (Zhang et al., 2018): each batch mixed with itself rolled by one, with one
    /// lambda ~ Beta(1, 1) per batch, and the loss mixed the same way (soft labels).
    pub mixup: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    pub loss: f64,
    pub accuracy: f64,
}

pub fn cosine_lr(cfg: &TrainConfig, step: u64) -> f64 {
    let t = (step as f64 / cfg.total_steps.max(1) as f64).min(1.0);
    cfg.lr_min + 0.5 * (cfg.lr_max - cfg.lr_min) * (1.0 + (std::f64::consts::PI * t).cos())
}

fn check_labels(model: &Model, pixels: &[f32], labels: &[u8]) -> Result<()> {
    check_images("labels", pixels)?;
    if labels.len() * 784 != pixels.len() {
        return Err(Error::Shape {
            op: "labels",
            expected: format!("{} labels (one per image)", pixels.len() / 784),
            got: format!("{}", labels.len()),
        });
    }
    if let Some(&bad) = labels.iter().find(|&&l| l as usize >= model.classes) {
        crate::bail!(
            InvalidArgument,
            "labels: label {bad} out of range for {} classes",
            model.classes
        );
    }
    Ok(())
}

pub fn train_epoch(
    model: &mut Model,
    pixels: &[f32],
    labels: &[u8],
    cfg: &TrainConfig,
    progress: Progress,
) -> Result<Metrics> {
    check_labels(model, pixels, labels)?;
    if cfg.batch_size < 2 {
        crate::bail!(
            InvalidArgument,
            "train: batch size must be >= 2 (batch norm needs it), got {}",
            cfg.batch_size
        );
    }
    if !(cfg.lr_max > 0.0 && cfg.lr_min >= 0.0 && cfg.lr_min <= cfg.lr_max) {
        crate::bail!(
            InvalidArgument,
            "train: need 0 <= lr-min <= lr-max and lr-max > 0, got {} and {}",
            cfg.lr_min,
            cfg.lr_max
        );
    }
    let n = labels.len();
    let x_all = model.input(pixels)?;
    let y_all = Tensor::from_vec(
        labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
        n,
        &model.device,
    )?;
    let order = permutation(n, cfg.seed, 0x5eed_0000 ^ cfg.epoch as u32);
    let vars = model.trainable();
    let mut optimizer = match model.optimizer.take() {
        Some(o) if o.kind.same_optimizer(cfg.optimizer) => o,
        _ => Optimizer::new(cfg.optimizer, cfg.weight_decay),
    };
    optimizer.kind = cfg.optimizer;
    optimizer.weight_decay = cfg.weight_decay;
    progress.start(n as u64);
    let (mut loss_sum, mut correct, mut seen) = (0f64, 0u64, 0usize);
    // The last partial batch is dropped when it is too small for batch-norm statistics.
    let device = model.device.clone();
    let result = crate::kernels::on_pool(&device, || -> Result<()> {
        for chunk in order.chunks(cfg.batch_size) {
            if chunk.len() < 2 {
                break;
            }
            let idx = Tensor::from_slice(chunk, chunk.len(), &model.device)?;
            let x = x_all.index_select(&idx, 0)?;
            let y = y_all.index_select(&idx, 0)?;
            model
                .net
                .set_step_seed(cfg.seed ^ (optimizer.step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (x, mix) = if cfg.mixup {
                // Beta(1, 1) is uniform on [0, 1].
                let lambda = Philox::new(cfg.seed, 0x4d49_5855 ^ cfg.epoch as u32, 0)
                    .uniform_at(optimizer.step) as f64;
                // torch.roll(x, 1, 0): row i takes row i - 1.
                let rolled: Vec<u32> = (0..chunk.len())
                    .map(|i| chunk[(i + chunk.len() - 1) % chunk.len()])
                    .collect();
                let idx = Tensor::from_vec(rolled, chunk.len(), &model.device)?;
                let x2 = x_all.index_select(&idx, 0)?;
                let y2 = y_all.index_select(&idx, 0)?;
                (
                    ((x * lambda)? + (x2 * (1.0 - lambda))?)?,
                    Some((lambda, y2)),
                )
            } else {
                (x, None)
            };
            let logits = model
                .net
                .forward_tapped(&x, true, &mut crate::models::no_tap())?;
            let loss = match &mix {
                Some((lambda, y2)) => {
                    ((candle_nn::loss::cross_entropy(&logits, &y)? * *lambda)?
                        + (candle_nn::loss::cross_entropy(&logits, y2)? * (1.0 - lambda))?)?
                }
                None => candle_nn::loss::cross_entropy(&logits, &y)?,
            };
            let loss_value = loss.to_scalar::<f32>()? as f64;
            if !loss_value.is_finite() {
                crate::bail!(
                    NotFinite,
                    "train: loss became {loss_value} at step {}; lower --lr-max or check the data",
                    optimizer.step + 1
                );
            }
            let grads = loss.backward()?;
            let lr = cosine_lr(cfg, optimizer.step);
            optimizer.apply(&vars, &grads, lr)?;
            loss_sum += loss_value * chunk.len() as f64;
            let pred = logits.argmax(D::Minus1)?;
            correct += pred
                .eq(&y)?
                .to_dtype(DType::F32)?
                .sum_all()?
                .to_scalar::<f32>()? as u64;
            seen += chunk.len();
            progress.advance(chunk.len() as u64);
        }
        Ok(())
    });
    model.optimizer = Some(optimizer);
    result?;
    let seen = seen.max(1) as f64;
    Ok(Metrics {
        loss: loss_sum / seen,
        accuracy: correct as f64 / seen,
    })
}

/// Mean cross-entropy and accuracy in inference mode.
pub fn evaluate(
    model: &Model,
    pixels: &[f32],
    labels: &[u8],
    progress: Progress,
) -> Result<Metrics> {
    check_labels(model, pixels, labels)?;
    let n = labels.len();
    progress.start(n as u64);
    let (mut loss_sum, mut correct) = (0f64, 0u64);
    for start in (0..n).step_by(1000) {
        let end = (start + 1000).min(n);
        let x = model.input(&pixels[start * 784..end * 784])?;
        let y = Tensor::from_vec(
            labels[start..end]
                .iter()
                .map(|&l| l as u32)
                .collect::<Vec<_>>(),
            end - start,
            &model.device,
        )?;
        let logits = model.logits(&x)?;
        loss_sum += candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64
            * (end - start) as f64;
        correct += logits
            .argmax(D::Minus1)?
            .eq(&y)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as u64;
        progress.advance((end - start) as u64);
    }
    Ok(Metrics {
        loss: loss_sum / n as f64,
        accuracy: correct as f64 / n as f64,
    })
}
