//! The template classifier: test images scored against classification images.

use super::PIXELS;
use crate::error::{Error, Result};
use crate::model::check_images;
use candle_core::{Device, Tensor};

/// Cosine-similarity scores `[n, classes]` of images against L2-normalised templates, both
/// taken as deviations: the templates from their mean over classes, the images from `centre`
/// (the noise's mean image, so an image is compared by how it departs from what every stimulus
/// shares) or, without it, from each image's own mean pixel.
pub fn template_scores(
    templates: &[f32],
    classes: usize,
    images: &[f32],
    centre: Option<&[f32]>,
    device: &Device,
) -> Result<Tensor> {
    check_images("templates", images)?;
    if let Some(c) = centre {
        if c.len() != PIXELS {
            return Err(Error::Shape {
                op: "templates",
                expected: "a centre image of 784 values".into(),
                got: c.len().to_string(),
            });
        }
    }
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
    let x = match centre {
        Some(c) => x.broadcast_sub(&Tensor::from_slice(c, (1, PIXELS), device)?)?,
        None => x.broadcast_sub(&x.mean_keepdim(1)?)?,
    };
    let x = x.broadcast_div(&(x.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?)?;
    Ok(x.matmul(&t.t()?)?)
}
