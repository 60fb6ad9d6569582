//! Adversarial training (Goodfellow et al., 2014) of a generator and a discriminator, two
//! `Model`s built from specs (`Output::Image` and `Output::Score`). One step follows PyTorch's
//! DCGAN example: the discriminator learns on a real batch and on a detached fake batch, then the
//! generator learns through the updated discriminator with the non-saturating loss
//! -log D(G(z)).
//!
//! The discriminator's normalisation (mean 0.5, std 0.5 for a tanh generator) maps real pixels
//! into the space the generator writes in, so fakes go into the discriminator as they are and
//! `generate` maps them back to pixels with the same two numbers.

pub mod frechet;

use crate::error::{Error, Result};
use crate::model::{check_images, Model};
use crate::optim::{Kind, Optimizer};
use crate::philox::{permutation, Philox};
use crate::progress::Progress;
use crate::spec::Output;
use candle_core::{Tensor, D};

/// One GAN epoch's settings; `ffi/gan.ts` sends every field (the classic MLP GAN's Adam 2e-4,
/// beta1 0.5, batch 128 are its defaults).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GanConfig {
    pub batch_size: usize,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub seed: u64,
    pub epoch: u64,
}

/// Means over the epoch's steps.
#[derive(Debug, Clone, Copy, Default)]
pub struct GanMetrics {
    pub d_loss: f64,
    pub g_loss: f64,
    /// Mean D(x) on real images and D(G(z)) on fakes before the discriminator's step: near 0.5
    /// for both when neither network wins.
    pub d_real: f64,
    pub d_fake: f64,
}

/// Philox streams of the latent draws, so that each use has its own.
const TRAIN_LATENT_STREAM: u32 = 0x6741_4e00;
const DROPOUT_STREAMS: [u64; 3] = [0x5245_414c, 0x4641_4b45, 0x4745_4e52];

/// mean(softplus(-l)) for target 1, mean(softplus(l)) for target 0, computed stably as
/// relu(l) - l*t + log(1 + exp(-|l|)): PyTorch's `BCEWithLogitsLoss`.
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let stable = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok(((logits.relu()? - (logits * target)?)? + stable)?.mean_all()?)
}

fn check_pair(g: &Model, d: &Model) -> Result<usize> {
    if g.spec.output != Output::Image {
        crate::bail!(
            InvalidArgument,
            "gan: the generator's spec ({}) must have output \"image\"",
            g.spec.name
        );
    }
    if d.spec.output != Output::Score || d.spec.input_size() != 784 {
        crate::bail!(
            InvalidArgument,
            "gan: the discriminator's spec ({}) must take an image and have output \"score\"",
            d.spec.name
        );
    }
    if g.spec.input.len() != 1 {
        crate::bail!(
            InvalidArgument,
            "gan: the generator's input must be a latent vector [dim], got {:?}",
            g.spec.input
        );
    }
    Ok(g.spec.input[0])
}

fn sigmoid_mean(logits: &Tensor) -> Result<f64> {
    Ok(candle_nn::ops::sigmoid(logits)?
        .mean_all()?
        .to_scalar::<f32>()? as f64)
}

/// One epoch over `pixels` (real images in [0, 1]), in a seeded order with a seeded latent per
/// step.
pub fn train_epoch(
    g: &mut Model,
    d: &mut Model,
    pixels: &[f32],
    cfg: &GanConfig,
    progress: Progress,
) -> Result<GanMetrics> {
    let latent = check_pair(g, d)?;
    check_images("gan", pixels)?;
    if cfg.batch_size < 2 || !cfg.lr.is_finite() || cfg.lr <= 0.0 {
        crate::bail!(
            InvalidArgument,
            "gan: need batch size >= 2 and lr > 0, got {} and {}",
            cfg.batch_size,
            cfg.lr
        );
    }
    let kind = Kind::Adam {
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: 1e-8,
    };
    let take = |m: &mut Model| match m.optimizer.take() {
        Some(mut o) if o.kind.same_optimizer(kind) => {
            o.kind = kind; // a loaded state records the optimiser, not its betas
            o
        }
        _ => Optimizer::new(kind, 0.0),
    };
    let (mut opt_g, mut opt_d) = (take(g), take(d));
    let (g_vars, d_vars) = (g.trainable(), d.trainable());
    let n = pixels.len() / 784;
    let x_all = d.input(pixels)?;
    let order = permutation(n, cfg.seed, 0x6741_4e5f ^ cfg.epoch as u32);
    progress.start(n as u64);
    let mut sums = GanMetrics::default();
    let mut steps = 0usize;
    let device = d.device.clone();
    let result = crate::kernels::on_pool(&device, || -> Result<()> {
        for chunk in order.chunks(cfg.batch_size) {
            if chunk.len() < 2 {
                break;
            }
            let b = chunk.len();
            let idx = Tensor::from_slice(chunk, b, &d.device)?;
            let real = x_all.index_select(&idx, 0)?;
            let mut z = vec![0f32; b * latent];
            Philox::new(cfg.seed, TRAIN_LATENT_STREAM ^ cfg.epoch as u32, opt_g.step)
                .fill_normal(&mut z, 0.0, 1.0);
            let z = Tensor::from_vec(z, (b, latent), &g.device)?;
            let step_seed = cfg.seed ^ (opt_d.step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            g.net.set_step_seed(step_seed);
            let fake = g
                .net
                .forward_tapped(&z, true, &mut crate::models::no_tap())?
                .reshape((b, 1, 28, 28))?;

            // The discriminator: real images towards 1, detached fakes towards 0.
            let d_forward = |x: &Tensor, salt: u64| {
                d.net.set_step_seed(step_seed ^ salt);
                d.net.forward_tapped(x, true, &mut crate::models::no_tap())
            };
            let d_real = d_forward(&real, DROPOUT_STREAMS[0])?;
            let d_fake = d_forward(&fake.detach(), DROPOUT_STREAMS[1])?;
            let d_loss = (bce_with_logits(&d_real, 1.0)? + bce_with_logits(&d_fake, 0.0)?)?;
            let d_loss_value = d_loss.to_scalar::<f32>()? as f64;
            opt_d.apply(&d_vars, &d_loss.backward()?, cfg.lr)?;

            // The generator, through the updated discriminator.
            let d_on_fake = d_forward(&fake, DROPOUT_STREAMS[2])?;
            let g_loss = bce_with_logits(&d_on_fake, 1.0)?;
            let g_loss_value = g_loss.to_scalar::<f32>()? as f64;
            if !(d_loss_value.is_finite() && g_loss_value.is_finite()) {
                crate::bail!(
                    NotFinite,
                    "gan: the loss became non-finite at step {} (discriminator {d_loss_value}, \
                     generator {g_loss_value}); lower --lr",
                    opt_g.step + 1
                );
            }
            opt_g.apply(&g_vars, &g_loss.backward()?, cfg.lr)?;

            sums.d_loss += d_loss_value;
            sums.g_loss += g_loss_value;
            sums.d_real += sigmoid_mean(&d_real)?;
            sums.d_fake += sigmoid_mean(&d_fake)?;
            steps += 1;
            progress.advance(b as u64);
        }
        Ok(())
    });
    g.optimizer = Some(opt_g);
    d.optimizer = Some(opt_d);
    result?;
    let steps = steps.max(1) as f64;
    Ok(GanMetrics {
        d_loss: sums.d_loss / steps,
        g_loss: sums.g_loss / steps,
        d_real: sums.d_real / steps,
        d_fake: sums.d_fake / steps,
    })
}

/// Images from latent vectors `z` (`[n * dim]`), in eval mode, as pixels `[n * 784]`: the
/// generator's output mapped back with its normalisation.
pub fn generate(g: &Model, z: &[f32]) -> Result<Vec<f32>> {
    let latent = match (g.spec.output, &g.spec.input[..]) {
        (Output::Image, [dim]) => *dim,
        _ => crate::bail!(
            InvalidArgument,
            "generate: {} is not a generator (a spec with a [dim] input and output \"image\")",
            g.spec.name
        ),
    };
    if z.is_empty() || !z.len().is_multiple_of(latent) {
        return Err(Error::Shape {
            op: "generate",
            expected: format!("a non-empty multiple of {latent} values (n x {latent})"),
            got: format!("{} values", z.len()),
        });
    }
    if let Some(i) = z.iter().position(|v| !v.is_finite()) {
        crate::bail!(
            NotFinite,
            "generate: latent {} has a non-finite value at index {}",
            i / latent,
            i % latent
        );
    }
    let mut out = Vec::with_capacity(z.len() / latent * 784);
    for chunk in z.chunks(1000 * latent) {
        let n = chunk.len() / latent;
        let x = Tensor::from_slice(chunk, (n, latent), &g.device)?;
        let y = g.logits(&x)?.reshape((n, 784))?;
        let pixels = y.affine(g.std as f64, g.mean as f64)?;
        out.extend(pixels.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// The discriminator's probability that each image is real, for pixels in [0, 1].
pub fn discriminate(d: &Model, pixels: &[f32]) -> Result<Vec<f32>> {
    check_images("discriminate", pixels)?;
    let mut out = Vec::with_capacity(pixels.len() / 784);
    for chunk in pixels.chunks(1000 * 784) {
        let logits = d.logits(&d.input(chunk)?)?;
        out.extend(
            candle_nn::ops::sigmoid(&logits)?
                .squeeze(D::Minus1)?
                .to_vec1::<f32>()?,
        );
    }
    Ok(out)
}
