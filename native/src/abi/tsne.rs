//! t-SNE across the boundary (`ffi/tsne.ts`).

use super::{export, insert, slice, slice_mut, Object};
use crate::progress::Progress;
use crate::tsne::{self, TsneOptions};

export! {
    /// Runs `tsne::tsne` on the rows of `data` (`options.dims` columns each); returns its array
    /// set (`embedding`, `explainedVariance`; `klDivergence` and `trustworthiness` in the
    /// summary) as a handle.
    fn wna_tsne(
        data: *const f32,
        n_values: usize,
        options: *const u8,
        options_len: usize,
        progress: *mut u64,
        handle_out: *mut u64,
    ) {
        let o: TsneOptions = super::options(options, options_len, "tsne")?;
        let data = slice(data, n_values, "data")?;
        let arrays = tsne::tsne(data, &o, Progress::from_ptr(progress))?;
        insert(Object::Arrays(arrays), handle_out)
    }
}

export! {
    /// `tsne::trustworthiness` of `embedded` (rows of `embedded_dims`) against `original`
    /// (rows of `dims`) with `k` neighbours, written to `out[0]`.
    fn wna_trustworthiness(
        original: *const f32,
        n_original: usize,
        dims: usize,
        embedded: *const f32,
        n_embedded: usize,
        embedded_dims: usize,
        k: usize,
        out: *mut f64,
    ) {
        let x = slice(original, n_original, "original")?;
        let y = slice(embedded, n_embedded, "embedded")?;
        slice_mut(out, 1, "trustworthiness")?[0] =
            tsne::trustworthiness(x, dims, y, embedded_dims, k)?;
        Ok(())
    }
}
