//! The library's global allocator: the system's, plus two things for big buffers (4 MiB and
//! more), which candle allocates afresh for every op's output.
//!
//! - **Huge pages.** The kernel is asked for transparent huge pages (2 MiB). A white-noise batch
//!   of `smaller` allocates activations of up to 100 MB: with 4 KiB pages, 20,000 noise images
//!   took 917,020 page faults (`perf stat`), against 66,466 with the advice. glibc's own switch
//!   (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`) only works when set before the process starts;
//!   Deno loads the library later, so the library advises the kernel itself.
//! - **A cache of freed blocks.** glibc hands big blocks back to the kernel on `free`, and the
//!   kernel zeroes every page of the next one on its first touch: in a `perf` profile of
//!   `larger`'s inference that zeroing (`clear_page_erms`) was a fifth of all the time. The same
//!   shapes recur batch after batch, so freed blocks are kept, up to [`CACHE_BYTES`], and handed
//!   out again for a request of the same size class. What the cache holds is bounded by that
//!   constant, not by the number of samples.
//! - **glibc's own reuse for the blocks below that.** glibc serves blocks from 128 KiB up with
//!   fresh mappings too, until a freed big mapping raises that threshold; with big blocks now
//!   never freed, it stayed low, and zoo net 11.1's training took 40-65% more page faults. When
//!   the library loads it sets the threshold to [`BIG`] and keeps freed heap memory up to
//!   [`TRIM_BYTES`] (`mallopt`), so the blocks below the cache's are reused by glibc.
//!
//! Where the kernel's transparent huge pages are off, or on for every mapping already, the
//! advice changes nothing, and its error is ignored: it is only a hint.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// Buffers at least this large are advised and cached: smaller ones hold few whole huge pages,
/// and glibc already reuses them.
const BIG: usize = 4 << 20;
/// The x86-64 and aarch64 (4 KiB base page) transparent huge page.
const HUGE_PAGE: usize = 2 << 20;
/// Big blocks are allocated in multiples of this, so that a block freed by one tensor fits the
/// next tensor of about the same size.
const SIZE_CLASS: usize = HUGE_PAGE;
/// The alignment of every big block: the most `malloc` and `calloc` give without asking, so
/// that a fresh zeroed block comes from `calloc`, which skips the memset for fresh pages (a
/// larger alignment makes `System` memset it, touching every page before it can be advised).
/// Requests that ask for more go to the system allocator unchanged.
const BIG_ALIGN: usize = 16;
/// The most the cache keeps, in bytes and in blocks. One `larger` or `smaller` batch frees a
/// few hundred MB of activations and gradients per pass.
const CACHE_BYTES: usize = 1 << 30;
const CACHE_SLOTS: usize = 64;
/// Free memory glibc may keep at the top of a heap before it gives it back to the kernel.
const TRIM_BYTES: usize = 256 << 20;

/// Runs when the library is loaded: glibc's thresholds for the blocks below [`BIG`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static TUNE_GLIBC: extern "C" fn() = tune_glibc;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn tune_glibc() {
    // SAFETY: `mallopt` only sets allocator parameters; both values fit a C int.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, BIG as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_BYTES as libc::c_int);
    }
}

/// [`System`], with huge-page advice and a bounded cache of freed blocks for big allocations.
pub struct HugePages;

/// A freed big block: its address, its size class, and when it was freed (for eviction).
#[derive(Clone, Copy)]
struct Cached {
    addr: usize,
    class: usize,
    freed_at: u64,
}

/// The cache: a fixed array, since the allocator must not allocate while it holds the lock.
struct Cache {
    slots: [Option<Cached>; CACHE_SLOTS],
    bytes: usize,
    clock: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    slots: [None; CACHE_SLOTS],
    bytes: 0,
    clock: 0,
});

impl Cache {
    /// Takes a cached block of exactly `class` bytes, the most recently freed (warmest) first.
    fn take(&mut self, class: usize) -> Option<*mut u8> {
        let slot = self
            .slots
            .iter_mut()
            .filter(|s| s.is_some_and(|c| c.class == class))
            .max_by_key(|s| s.map_or(0, |c| c.freed_at))?;
        let block = slot.take()?;
        self.bytes -= block.class;
        Some(block.addr as *mut u8)
    }

    /// Keeps a freed block, evicting the oldest ones to stay within the bounds; returns the
    /// blocks the caller must hand back to the system (at most every slot).
    fn keep(&mut self, addr: usize, class: usize, evicted: &mut [Option<Cached>; CACHE_SLOTS]) {
        let mut n = 0;
        while self.bytes + class > CACHE_BYTES || self.slots.iter().all(Option::is_some) {
            let Some(oldest) = self
                .slots
                .iter_mut()
                .filter(|s| s.is_some())
                .min_by_key(|s| s.map_or(u64::MAX, |c| c.freed_at))
            else {
                break;
            };
            let block = oldest.take().expect("filtered to occupied slots");
            self.bytes -= block.class;
            evicted[n] = Some(block);
            n += 1;
        }
        self.clock += 1;
        let free = self.slots.iter_mut().find(|s| s.is_none());
        let free = free.expect("eviction leaves a free slot");
        *free = Some(Cached {
            addr,
            class,
            freed_at: self.clock,
        });
        self.bytes += class;
    }
}

/// The size class of a big request, or `None` for a request the system serves unchanged.
fn big_class(layout: Layout) -> Option<usize> {
    (layout.size() >= BIG && layout.size() <= CACHE_BYTES && layout.align() <= BIG_ALIGN)
        .then(|| layout.size().next_multiple_of(SIZE_CLASS))
}

fn class_layout(class: usize) -> Layout {
    Layout::from_size_align(class, BIG_ALIGN).expect("a size class is a valid layout")
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    // A panic never happens while the lock is held (no allocation, no unwrap that can fail on
    // caller data), but a poisoned cache is still consistent, so it is used as it is.
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A big block of `class` bytes: a cached one, or a fresh one from the system, advised.
unsafe fn alloc_big(class: usize) -> *mut u8 {
    if let Some(p) = lock().take(class) {
        return p;
    }
    let p = unsafe { System.alloc(class_layout(class)) };
    advise(p, class);
    p
}

/// Hands a big block to the cache, and the blocks that eviction pushed out back to the system.
unsafe fn free_big(p: *mut u8, class: usize) {
    let mut evicted = [None; CACHE_SLOTS];
    lock().keep(p as usize, class, &mut evicted);
    for block in evicted.into_iter().flatten() {
        unsafe { System.dealloc(block.addr as *mut u8, class_layout(block.class)) }
    }
}

// SAFETY: requests that are not big go to `System` unchanged. A big request gets a block of
// at least its size class (which is at least its size) and of `BIG_ALIGN` (at least its
// alignment), either fresh from `System` with exactly that layout or one that was allocated so
// and freed by its owner; `dealloc` recomputes the same class from the same layout, so every
// block returns to `System` with the layout it was allocated with. The advice only touches
// pages inside the block and does not change their contents.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match big_class(layout) {
            Some(class) => unsafe { alloc_big(class) },
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(class) = big_class(layout) else {
            return unsafe { System.alloc_zeroed(layout) };
        };
        if let Some(p) = lock().take(class) {
            unsafe { p.write_bytes(0, layout.size()) };
            return p;
        }
        // Fresh pages from the kernel are zero already, which `calloc` knows.
        let p = unsafe { System.alloc_zeroed(class_layout(class)) };
        advise(p, class);
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match big_class(layout) {
            Some(class) => unsafe { free_big(p, class) },
            None => unsafe { System.dealloc(p, layout) },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (old_class, new_class) = (big_class(layout), big_class(new_layout));
        if old_class.is_none() && new_class.is_none() {
            return unsafe { System.realloc(p, layout, new_size) };
        }
        if old_class.is_some() && old_class == new_class {
            return p;
        }
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
        }
        q
    }
}

/// Advises the whole huge pages inside `[p, p + len)`.
fn advise(p: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    if !p.is_null() && len >= BIG {
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
        let mut v = vec![0u8; 3 * BIG + 12_345];
        assert!(v.iter().all(|&b| b == 0));
        v.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        v.resize(5 * BIG, 7);
        assert!(v[..3 * BIG + 12_345]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == i as u8));
        assert_eq!(v[5 * BIG - 1], 7);
    }

    /// A freed block comes back for the next request of its class, and a zeroed request gets
    /// zeros even when the block it reuses held data.
    #[test]
    fn a_freed_block_is_reused_and_zeroed_when_asked() {
        let size = BIG + 1000;
        let layout = Layout::from_size_align(size, 8).unwrap();
        unsafe {
            let a = HugePages.alloc(layout);
            a.write_bytes(0xAB, size);
            HugePages.dealloc(a, layout);
            let b = HugePages.alloc_zeroed(layout);
            // Tests run in parallel and share the cache, so `b` may be another block; either
            // way it must be all zeros.
            assert!(std::slice::from_raw_parts(b, size).iter().all(|&x| x == 0));
            HugePages.dealloc(b, layout);
        }
    }

    /// The cache evicts the oldest blocks to stay within its byte and slot bounds.
    #[test]
    fn the_cache_stays_within_its_bounds() {
        let mut cache = Cache {
            slots: [None; CACHE_SLOTS],
            bytes: 0,
            clock: 0,
        };
        let class = CACHE_BYTES / 4;
        let mut evicted_total = 0;
        for i in 0..10 {
            let mut evicted = [None; CACHE_SLOTS];
            cache.keep(0x1000 * (i + 1), class, &mut evicted);
            let out: Vec<_> = evicted.into_iter().flatten().collect();
            // The first four fill the cache; after that each keep evicts the oldest one.
            if i >= 4 {
                assert_eq!(out.len(), 1);
                assert_eq!(out[0].addr, 0x1000 * (i - 3));
            }
            evicted_total += out.len();
            assert!(cache.bytes <= CACHE_BYTES);
        }
        assert_eq!(evicted_total, 6);
        let small = 2 * SIZE_CLASS;
        for i in 0..CACHE_SLOTS + 5 {
            let mut evicted = [None; CACHE_SLOTS];
            cache.keep(0x9000_0000 + i, small, &mut evicted);
            assert!(cache.slots.iter().filter(|s| s.is_some()).count() <= CACHE_SLOTS);
        }
        assert_eq!(
            cache.take(small).map(|p| p as usize),
            Some(0x9000_0000 + CACHE_SLOTS + 4)
        );
        assert_eq!(cache.take(3 * SIZE_CLASS), None);
    }
}
