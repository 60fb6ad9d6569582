//! The library's global allocator: the system's, asking the kernel for transparent huge pages
//! (2 MiB) for big buffers. A white-noise batch of `smaller` allocates activations of up to
//! 100 MB, and candle allocates every op's output afresh: with 4 KiB pages each batch took
//! hundreds of thousands of page faults (`perf stat`: 917,020 for 20,000 noise images, against
//! 66,466 with this allocator), and the faults with their cgroup accounting were a fifth of the
//! profile. glibc's own switch for this (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`) only works when
//! set before the process starts; Deno loads the library later, so the library advises the
//! kernel itself.
//!
//! Where the kernel's transparent huge pages are off, or on for every mapping already, the
//! advice changes nothing, and its error is ignored: it is only a hint.

use std::alloc::{GlobalAlloc, Layout, System};

/// Buffers at least this large are advised: smaller ones hold few whole huge pages.
const ADVISE_FROM: usize = 4 << 20;
/// The x86-64 and aarch64 (4 KiB base page) transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// [`System`], plus `madvise(MADV_HUGEPAGE)` over the whole huge pages of big allocations.
pub struct HugePages;

// SAFETY: every call is forwarded to `System` unchanged; the advice only touches pages inside
// the block just returned, and does not change their contents.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        advise(q, new_size);
        q
    }
}

/// Advises the whole huge pages inside `[p, p + len)`.
fn advise(p: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    if !p.is_null() && len >= ADVISE_FROM {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize + len) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: the range lies inside the block the allocator has just handed out.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big buffer is usable end to end, zeroed where asked, and survives a realloc.
    #[test]
    fn big_blocks_behave_as_the_system_allocator_gives_them() {
        let mut v = vec![0u8; 3 * ADVISE_FROM + 12_345];
        assert!(v.iter().all(|&b| b == 0));
        v.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        v.resize(5 * ADVISE_FROM, 7);
        assert!(v[..3 * ADVISE_FROM + 12_345]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == i as u8));
        assert_eq!(v[5 * ADVISE_FROM - 1], 7);
    }
}
