//! wna's native engine: candle models, training, white-noise analysis and input gradients,
//! exported through a C ABI for Deno (see `ffi.rs`).

pub mod alloc;
pub mod arrays;
pub mod attribution;
pub mod augment;
pub mod error;
pub mod feature_vis;
pub mod ffi;
pub mod frechet;
pub mod gan;
pub mod grad;
pub mod kernels;
pub mod layers;
pub mod metanet;
pub mod model;
pub mod models;
pub mod noise;
pub mod objective;
pub mod onnx;
pub mod optim;
pub mod options;
pub mod philox;
pub mod population;
pub mod portable;
pub mod progress;
pub mod recurrent;
pub mod spec;
pub mod train;
pub mod tsne;

pub use error::{Error, Result};

#[global_allocator]
static ALLOCATOR: alloc::HugePages = alloc::HugePages;
