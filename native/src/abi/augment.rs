//! Data augmentation across the boundary (`ffi/augment.ts`).

use super::{export, slice, slice_mut};
use crate::augment::{self, Transform};
use crate::model::check_images;
use crate::noise::SIDE;
use serde::Deserialize;

/// `augment`'s options: the transforms in order, and the seed and epoch that key the draws.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AugmentOptions {
    transforms: Vec<Transform>,
    seed: u64,
    epoch: u64,
}

export! {
    /// Augments `n` 28x28 images with `options` (see `augment`).
    fn wna_augment(
        pixels: *const f32,
        n_values: usize,
        options: *const u8,
        options_len: usize,
        out: *mut f32,
        out_len: usize,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let o: AugmentOptions = super::options(options, options_len, "augment")?;
        let out = slice_mut(out, out_len, "augmented images")?;
        check_images("augment", px)?;
        let images = augment::augment(px, SIDE, SIDE, &o.transforms, o.seed, o.epoch)?;
        super::copy_out(out, &images, "augmented images")
    }
}
