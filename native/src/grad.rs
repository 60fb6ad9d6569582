//! Input gradients in inference mode, and the Fast Gradient Sign Method
//! (Goodfellow et al., 2015, https://arxiv.org/abs/1412.6572) in pixel space.

use crate::error::{Error, Result};
use crate::model::{check_images, Model};
use candle_core::{Tensor, Var};

const CHUNK: usize = 500;

fn check(model: &Model, pixels: &[f32], labels: &[u8]) -> Result<()> {
    check_images("gradients", pixels)?;
    if labels.len() * 784 != pixels.len() {
        return Err(Error::Shape {
            op: "gradients",
            expected: format!("{} labels", pixels.len() / 784),
            got: labels.len().to_string(),
        });
    }
    if let Some(&l) = labels.iter().find(|&&l| l as usize >= model.classes) {
        crate::bail!(
            InvalidArgument,
            "gradients: label {l} out of range for {} classes",
            model.classes
        );
    }
    Ok(())
}

/// `d loss / d pixels` where loss is the *sum* of per-image cross-entropies, so each image's
/// gradient is that of its own loss, whatever the batch. Returns the gradients and the loss.
pub fn input_gradients(model: &Model, pixels: &[f32], labels: &[u8]) -> Result<(Vec<f32>, f64)> {
    check(model, pixels, labels)?;
    let mut grads = Vec::with_capacity(pixels.len());
    let mut loss_sum = 0f64;
    for (px, lb) in pixels.chunks(CHUNK * 784).zip(labels.chunks(CHUNK)) {
        let n = lb.len();
        let x = Var::from_tensor(&Tensor::from_slice(px, (n, 1, 28, 28), &model.device)?)?;
        let y = Tensor::from_vec(
            lb.iter().map(|&l| l as u32).collect::<Vec<_>>(),
            n,
            &model.device,
        )?;
        let logits = model.logits(&model.normalise(x.as_tensor())?)?;
        let loss = (candle_nn::loss::cross_entropy(&logits, &y)? * n as f64)?;
        loss_sum += loss.to_scalar::<f32>()? as f64;
        let g = loss.backward()?;
        let gx = g.get(x.as_tensor()).ok_or_else(|| {
            Error::InvalidArgument("gradients: the loss does not depend on the input".into())
        })?;
        grads.extend(gx.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((grads, loss_sum))
}

/// `clip(x + eps * sign(grad), 0, 1)`; eps = 0 returns the images bit for bit.
pub fn fgsm(model: &Model, pixels: &[f32], labels: &[u8], eps: f32) -> Result<Vec<f32>> {
    // Pixels live in [0, 1]: an eps above 1 saturates every pixel, so it is a unit mistake
    // (eps in 0-255 grey levels) rather than a stronger attack.
    if !(0.0..=1.0).contains(&eps) {
        crate::bail!(
            InvalidArgument,
            "fgsm: eps must be in [0, 1] (pixel units), got {eps}; for grey levels divide by 255"
        );
    }
    check(model, pixels, labels)?;
    if eps == 0.0 {
        return Ok(pixels.to_vec());
    }
    let (grads, _) = input_gradients(model, pixels, labels)?;
    Ok(pixels
        .iter()
        .zip(grads)
        .map(|(&x, g)| {
            let s = if g > 0.0 {
                1.0
            } else if g < 0.0 {
                -1.0
            } else {
                0.0
            };
            (x + eps * s).clamp(0.0, 1.0)
        })
        .collect())
}
