//! Array sets across the boundary (`ffi/arrays.ts`): a manifest, then each array copied out.

use super::{export, slice_mut, text, with_arrays, write_text};
use crate::error::Error;

export! {
    /// The set's manifest: every array's name, dtype and shape, and the typed summary.
    fn wna_arrays_manifest(handle: u64, buf: *mut u8, cap: usize, len_out: *mut usize) {
        let manifest = with_arrays(handle, |a| Ok(a.manifest()))?;
        write_text(&manifest, buf, cap, len_out)
    }
}

export! {
    fn wna_arrays_read(handle: u64, name: *const u8, name_len: usize, out: *mut f32, out_len: usize) {
        let name = text(name, name_len, "array name")?;
        let out = slice_mut(out, out_len, "array")?;
        with_arrays(handle, |a| {
            let (_, data) = a.get(name).ok_or_else(|| {
                Error::InvalidArgument(format!("arrays: no array named \"{name}\""))
            })?;
            super::copy_out(out, data, name)
        })
    }
}
