//! A `[done, total]` pair of counters the TypeScript side polls while a long call runs.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Default)]
pub struct Progress<'a>(Option<&'a [AtomicU64; 2]>);

impl<'a> Progress<'a> {
    pub fn new(counters: &'a [AtomicU64; 2]) -> Self {
        Self(Some(counters))
    }

    /// # Safety
    /// `ptr` is null or points at two aligned u64 that outlive the call.
    pub unsafe fn from_ptr(ptr: *mut u64) -> Self {
        if ptr.is_null() {
            Self(None)
        } else {
            Self(Some(&*(ptr as *const [AtomicU64; 2])))
        }
    }

    pub fn start(&self, total: u64) {
        if let Some(c) = self.0 {
            c[0].store(0, Ordering::Relaxed);
            c[1].store(total, Ordering::Relaxed);
        }
    }

    pub fn advance(&self, n: u64) {
        if let Some(c) = self.0 {
            c[0].fetch_add(n, Ordering::Relaxed);
        }
    }
}
