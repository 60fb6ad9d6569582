//! The confidence study across the boundary (`ffi/confidence.ts`): a LeNet-5 population, the
//! pairs of one checkpoint, and one meta-network's fit.

use super::{export, insert, slice, slice_mut, text, with_population, Object};
use crate::confidence::metanet::{self, MetaOptions};
use crate::confidence::pairs::{self, PairOptions};
use crate::confidence::{Population, PopulationOptions};
use crate::error::Error;
use crate::progress::Progress;

/// `wna_population_run`'s epoch that means "evaluate, do not train".
const EVALUATE: u64 = u64::MAX;

export! {
    fn wna_population_new(options: *const u8, options_len: usize, handle_out: *mut u64) {
        let o: PopulationOptions = super::options(options, options_len, "population")?;
        insert(Object::Population(Population::new(o)?), handle_out)
    }
}

export! {
    /// `epoch`: the 0-based epoch to train, or u64::MAX to evaluate. `metrics_out`: loss and
    /// accuracy per member, `2 * members` values.
    fn wna_population_run(
        handle: u64,
        pixels: *const f32,
        n_values: usize,
        labels: *const u8,
        n_labels: usize,
        epoch: u64,
        progress: *mut u64,
        metrics_out: *mut f64,
        metrics_len: usize,
    ) {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let out = slice_mut(metrics_out, metrics_len, "metrics")?;
        let progress = Progress::from_ptr(progress);
        let metrics = with_population(handle, |p| {
            if out.len() != 2 * p.len() {
                return Err(Error::Shape {
                    op: "population",
                    expected: format!("a metrics buffer of {} values", 2 * p.len()),
                    got: out.len().to_string(),
                });
            }
            if epoch == EVALUATE {
                p.evaluate(px, lb, progress)
            } else {
                p.train_epoch(px, lb, epoch, progress)
            }
        })?;
        for (slot, m) in out.chunks_exact_mut(2).zip(metrics) {
            slot.copy_from_slice(&[m.loss, m.accuracy]);
        }
        Ok(())
    }
}

export! {
    fn wna_population_save(handle: u64, index: u64, path: *const u8, path_len: usize) {
        let path = text(path, path_len, "path")?;
        with_population(handle, |p| p.save(index as usize, path))
    }
}

export! {
    /// The confidence study's pairs of one LeNet-5 checkpoint (`confidence::pairs`), as an
    /// array set.
    fn wna_lenet_pairs(
        options: *const u8,
        options_len: usize,
        test_pixels: *const f32,
        test_values: usize,
        test_labels: *const u8,
        test_count: usize,
        reference_pixels: *const f32,
        reference_values: usize,
        reference_labels: *const u8,
        reference_count: usize,
        progress: *mut u64,
        handle_out: *mut u64,
    ) {
        let o: PairOptions = super::options(options, options_len, "pairs")?;
        let test = (
            slice(test_pixels, test_values, "test images")?,
            slice(test_labels, test_count, "test labels")?,
        );
        let reference = (
            slice(reference_pixels, reference_values, "reference images")?,
            slice(reference_labels, reference_count, "reference labels")?,
        );
        let arrays = pairs::pairs(&o, test, reference, Progress::from_ptr(progress))?;
        insert(Object::Arrays(arrays), handle_out)
    }
}

export! {
    /// Trains one meta-network (`metanet::fit`) and writes its predictions for the test rows.
    fn wna_metanet_fit(
        options: *const u8,
        options_len: usize,
        features: *const f32,
        n_values: usize,
        targets: *const f32,
        n_targets: usize,
        train: *const u32,
        n_train: usize,
        test: *const u32,
        n_test: usize,
        progress: *mut u64,
        predictions_out: *mut f32,
        predictions_len: usize,
    ) {
        let o: MetaOptions = super::options(options, options_len, "metanet")?;
        let predictions = metanet::fit(
            &o,
            slice(features, n_values, "features")?,
            slice(targets, n_targets, "targets")?,
            slice(train, n_train, "training rows")?,
            slice(test, n_test, "test rows")?,
            Progress::from_ptr(progress),
        )?;
        let out = slice_mut(predictions_out, predictions_len, "predictions")?;
        super::copy_out(out, &predictions, "predictions")
    }
}
