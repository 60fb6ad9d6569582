//! With the `cuda` feature, compiles wna's CUDA kernels (`src/cuda/*.cu`) to PTX with nvcc; the
//! library embeds the PTX and the driver JIT-compiles it for the GPU at hand on first use.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: &[&str] = &[
    "batch_norm",
    "conv",
    "noise",
    "layers",
    "pool",
    "white_noise",
];
/// Headers the kernels include.
const HEADERS: &[&str] = &["philox.cuh"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let nvcc = std::env::var("CUDA_ROOT")
        .map(|root| format!("{root}/bin/nvcc"))
        .unwrap_or_else(|_| "nvcc".into());
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    for header in HEADERS {
        println!("cargo:rerun-if-changed=src/cuda/{header}");
    }
    for name in KERNELS {
        let src = format!("src/cuda/{name}.cu");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "-o"])
            .arg(out.join(format!("{name}.ptx")))
            .arg(&src)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {nvcc} ({e}); `deno task build:cuda` sets it up")
            });
        assert!(status.success(), "{nvcc} failed on {src}");
    }
}
