//! Gradients with respect to the input across the boundary (`ffi/attribution.ts`): attributions
//! (saliency, integrated gradients, SmoothGrad), activation maximisation, the raw input gradient
//! and FGSM.

use super::{export, insert, optional, slice, slice_mut, with_model, Object};
use crate::attribution::{self, AttributionOptions};
use crate::feature_vis::{self, FeatureVisOptions};
use crate::grad;
use crate::progress::Progress;

export! {
    /// Runs `attribution::attribute` on `n_values / 784` images (options: method, one target
    /// per image, and the method's settings). Returns an array-set handle.
    fn wna_attribute(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        options: *const u8,
        options_len: usize,
        progress: *mut u64,
        handle_out: *mut u64,
    ) {
        let o: AttributionOptions = super::options(options, options_len, "attribute")?;
        let images = slice(pixels, n_values, "images")?;
        let arrays = with_model(handle, |m| {
            attribution::attribute(m, images, &o, Progress::from_ptr(progress))
        })?;
        insert(Object::Arrays(arrays), handle_out)
    }
}

export! {
    /// Runs `feature_vis::maximise`; `reference` (may be null) holds images whose best value
    /// per target is reported. Returns an array-set handle.
    fn wna_visualise(
        handle: u64,
        reference: *const f32,
        n_values: usize,
        options: *const u8,
        options_len: usize,
        progress: *mut u64,
        handle_out: *mut u64,
    ) {
        let mut o: FeatureVisOptions = super::options(options, options_len, "visualise")?;
        o.reference = optional(reference, n_values, "reference images")?.map(<[f32]>::to_vec);
        let arrays = with_model(handle, |m| {
            feature_vis::maximise(m, &o, Progress::from_ptr(progress))
        })?;
        insert(Object::Arrays(arrays), handle_out)
    }
}

export! {
    /// The summed cross-entropy's gradient with respect to the pixels; the loss to `loss_out`.
    fn wna_input_gradients(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        labels: *const u8,
        n_labels: usize,
        out: *mut f32,
        out_len: usize,
        loss_out: *mut f64,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let out = slice_mut(out, out_len, "gradients")?;
        let (g, loss) = with_model(handle, |m| grad::input_gradients(m, px, lb))?;
        super::copy_out(out, &g, "gradients")?;
        slice_mut(loss_out, 1, "loss")?[0] = loss;
        Ok(())
    }
}

export! {
    fn wna_fgsm(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        labels: *const u8,
        n_labels: usize,
        eps: f32,
        out: *mut f32,
        out_len: usize,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let out = slice_mut(out, out_len, "adversarial images")?;
        let adv = with_model(handle, |m| grad::fgsm(m, px, lb, eps))?;
        super::copy_out(out, &adv, "adversarial images")
    }
}
