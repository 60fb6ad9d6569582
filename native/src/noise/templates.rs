//! The template classifier: test images scored against classification images.

use super::PIXELS;
use crate::error::{Error, Result};
use crate::model::check_images;
use candle_core::{Device, Tensor};

/// Cosine-similarity scores `[n, classes]` of images against L2-normalised, mean-removed templates.
pub fn template_scores(
    templates: &[f32],
    classes: usize,
    images: &[f32],
    device: &Device,
) -> Result<Tensor> {
    check_images("templates", images)?;
    if templates.len() != classes * PIXELS {
        return Err(Error::Shape {
            op: "templates",
            expected: format!("{classes} x 784 values"),
            got: format!("{}", templates.len()),
        });
    }
    let t = Tensor::from_slice(templates, (classes, PIXELS), device)?;
    // Removing the mean over classes drops what every map shares (the noise mean itself).
    let t = t.broadcast_sub(&t.mean_keepdim(0)?)?;
    let t = t.broadcast_div(&(t.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?)?;
    let x = Tensor::from_slice(images, (images.len() / PIXELS, PIXELS), device)?;
    let x = x.broadcast_sub(&x.mean_keepdim(1)?)?;
    let x = x.broadcast_div(&(x.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?)?;
    Ok(x.matmul(&t.t()?)?)
}
