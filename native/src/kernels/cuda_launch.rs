//! What the launches of the layer kernels' CUDA twins (`conv2d/gpu.rs`, `batch_norm/gpu.rs`)
//! share: the launch shape, the error naming the kernel, and output buffers their kernels fill.

use candle_core::cuda_backend::CudaDevice;
use candle_core::Result as CResult;
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig};

/// `grid` blocks of `threads` threads, with only static shared memory.
pub fn config(grid: (u32, u32, u32), threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: grid,
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A failed launch of kernel `name`.
pub fn fail(name: &str, e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{name}: {e}"))
}

/// `len` uninitialised elements.
///
/// # Safety
/// The kernels launched next must write all `len` elements before anything reads them.
pub unsafe fn uninit<T: DeviceRepr>(dev: &CudaDevice, len: usize) -> CResult<CudaSlice<T>> {
    dev.alloc::<T>(len)
}
