//! wna's CUDA kernels built for the host emulator (`tests/cuda_emulator`), once per test binary,
//! and their C launchers. Included with `#[path]` by the emulated tests only.

use std::ffi::{c_void, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The loaded emulator library.
pub struct Library(*mut c_void);

// SAFETY: a dlopen handle may be used from any thread; dlsym is thread-safe.
unsafe impl Send for Library {}
unsafe impl Sync for Library {}

impl Library {
    /// The C launcher `name`.
    ///
    /// # Safety
    /// `F` must be a function pointer type with the launcher's C signature.
    pub unsafe fn launcher<F: Copy>(&self, name: &str) -> F {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
        let s = libc::dlsym(self.0, CString::new(name).unwrap().as_ptr());
        assert!(!s.is_null(), "{name} missing from the emulator");
        std::mem::transmute_copy(&s)
    }
}

/// Builds the emulated kernels with the host's C++ compiler and loads them.
pub fn library() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        // One file per test binary: cargo may build two of them at once.
        let lib = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}_kernels.so", env!("CARGO_CRATE_NAME")));
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        let out = std::process::Command::new(&cxx)
            .args(["-std=c++20", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-o"])
            .arg(&lib)
            .arg(dir.join("tests/cuda_emulator/kernels.cpp"))
            .arg("-lpthread")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {cxx} ({e}): the kernel emulator needs a C++20 compiler (apt install g++)")
            });
        assert!(
            out.status.success(),
            "{cxx} failed on the emulated kernels:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = CString::new(lib.to_str().unwrap()).unwrap();
        // SAFETY: a library this process just built.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
        assert!(!handle.is_null(), "cannot load {}", lib.display());
        Library(handle)
    })
}
