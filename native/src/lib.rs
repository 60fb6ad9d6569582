//! wna's native engine: candle models, training, white-noise analysis and input gradients,
//! exported through a C ABI for Deno (`abi/`, one file per feature).

pub mod abi;
pub mod alloc;
pub mod arrays;
pub mod attribution;
pub mod augment;
pub mod backward_fixes;
pub mod confidence;
pub mod error;
pub mod feature_vis;
pub mod gan;
pub mod grad;
pub mod kernels;
pub mod layers;
pub mod model;
pub mod models;
pub mod noise;
pub mod objective;
pub mod onnx;
pub mod optim;
pub mod philox;

pub mod progress;
pub mod recurrent;
pub mod spec;
pub mod train;
pub mod tsne;

pub use error::{Error, Result};

#[global_allocator]
static ALLOCATOR: alloc::HugePages = alloc::HugePages;
