//! CPU kernels for the layers our small nets spend their time in, as candle `CustomOp`s.
//!
//! candle 0.9's CPU conv runs im2col and one big gemm and then copies the result into NCHW, its
//! batch norm is a chain of single-threaded broadcast ops, and its max-pool backward goes
//! through upsampling and masks. For 28x28 inputs with 1 to 128 channels that made training
//! `smaller` about 15x slower than PyTorch on the same machine. These ops work on small groups of
//! images in parallel (rayon), keep each group's im2col buffer in a per-thread scratch buffer,
//! hand the products to `gemm` (the SIMD matrix kernel candle itself uses), and fuse bias, batch
//! norm and ReLU into single passes.
//! Each forward op has a backward (`bwd`) built from the no-grad ops further down, so training
//! and input gradients (FGSM) both use them. Off the CPU, the convolution, the training batch
//! norm and the max-pool run here too, on CUDA (`conv2d/gpu.rs`, `batch_norm/gpu.rs`,
//! `max_pool/gpu.rs`); the other layers send other devices to candle's own ops.

/// `fn $name` runs `$body` compiled for AVX-512 or AVX2, the widest the CPU has, and the
/// baseline build elsewhere. The library targets the baseline x86-64, where element-wise passes
/// (a recurrence's gates, Winograd's transforms) run 4 wide on SSE; AVX-512 runs 16 wide. No FMA
/// is ever contracted (Rust does not fuse `a * b + c` on its own), so every build gives the
/// baseline's bits. `$body` must be `#[inline(always)]`, and use plain `for` loops and no
/// closures: an iterator adapter's `fold` or a closure can stay out of line, and then runs
/// without the target features.
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* fn $name:ident = $body:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has just been checked for AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has just been checked for AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

mod avg_pool;
mod batch_norm;
mod conv2d;
#[cfg(feature = "cuda")]
mod cuda_launch;
mod leaky_relu;
mod linear;
mod max_pool;
mod recurrence;
mod scale_shift;

pub use avg_pool::AvgPool;
pub use batch_norm::gpu as batch_norm_gpu;
pub use batch_norm::{channel_statistics, inference_affine, BatchNorm, ChannelStatistics};
pub use conv2d::gpu as conv2d_gpu;
pub use conv2d::{Conv2d, Conv2dInference, ConvGeometry, Epilogue};
pub use leaky_relu::LeakyRelu;
pub use linear::Linear;
pub use max_pool::gpu as max_pool_gpu;
pub use max_pool::MaxPool2;
pub use recurrence::Recurrence;
pub use scale_shift::ScaleShift;

use candle_core::{CpuStorage, Layout};

pub(crate) type CResult<T> = candle_core::Result<T>;

pub(crate) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> CResult<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(d) => d,
        _ => candle_core::bail!("{what}: wna's CPU kernels take f32 tensors"),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: wna's CPU kernels take contiguous tensors"),
    }
}

/// [`f32_slice`] on the GPU: the f32 elements of a contiguous CUDA tensor.
#[cfg(feature = "cuda")]
pub(crate) fn cuda_f32_view<'a>(
    storage: &'a candle_core::CudaStorage,
    layout: &Layout,
    what: &str,
) -> CResult<cudarc::driver::CudaView<'a, f32>> {
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "{what}: wna's CUDA kernels take contiguous tensors"
        ))
    })?;
    Ok(storage.as_cuda_slice::<f32>()?.slice(start..end))
}

/// `dst (m x n) = [dst +] lhs (m x k) . rhs (k x n)`; every operand given by row and column
/// strides so transposes cost nothing. Single-threaded: callers parallelise over images.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    shape: (usize, usize, usize),
    dst: &mut [f32],
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    check_operands(
        shape,
        dst.len(),
        dst_strides,
        lhs,
        lhs_strides,
        rhs,
        rhs_strides,
    );
    // SAFETY: `check_operands` keeps every strided access inside the three slices, and `dst` is
    // borrowed mutably so it cannot alias `lhs` or `rhs`.
    unsafe {
        serial_gemm(
            shape,
            dst.as_mut_ptr(),
            dst_strides,
            accumulate,
            lhs.as_ptr(),
            lhs_strides,
            rhs.as_ptr(),
            rhs_strides,
        )
    }
}

/// [`matmul`] over every core: `dst` is cut into slabs of [`SLAB_COLUMNS`] columns, one serial
/// product each, run in parallel. Each slab packs only its share of the operand that spans the
/// columns (a linear layer's weights). `gemm`'s own threading packed its whole left operand on
/// every thread. Every element of `dst` is one serial product's, whatever the thread count, so
/// results do not depend on it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn parallel_matmul(
    shape: (usize, usize, usize),
    dst: &mut [f32],
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    let operands = (lhs, lhs_strides, rhs, rhs_strides);
    let dst = (dst.as_mut_ptr(), dst.len(), dst_strides);
    // SAFETY: `dst` is a live, initialised, exclusively borrowed slice of `dst.1` floats.
    unsafe { parallel_gemm(shape, dst, accumulate, operands) }
}

/// [`parallel_matmul`] into memory nobody has written yet: the product is stored without `dst`
/// being read, so a fresh output skips the zeroing pass (`memset` was 5% of an MLP GAN epoch's
/// samples, 2026-12-03). Every element at the strides is written; others stay uninitialised.
pub(crate) fn parallel_matmul_into(
    shape: (usize, usize, usize),
    dst: &mut [std::mem::MaybeUninit<f32>],
    dst_strides: (usize, usize),
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
) {
    let operands = (lhs.0, lhs.1, rhs.0, rhs.1);
    let dst = (dst.as_mut_ptr().cast::<f32>(), dst.len(), dst_strides);
    // SAFETY: `dst` is an exclusively borrowed block of `dst.1` floats; with `accumulate` false
    // `gemm` stores into it without using what was there.
    unsafe { parallel_gemm(shape, dst, false, operands) }
}

/// The body of [`parallel_matmul`] on `dst` given as `(address, length, strides)`.
///
/// # Safety
/// `dst` must be valid for writes of its length and not aliased meanwhile; with `accumulate`
/// its elements must be initialised.
#[allow(clippy::type_complexity)]
unsafe fn parallel_gemm(
    (m, n, k): (usize, usize, usize),
    (dst, dst_len, (dst_rs, dst_cs)): (*mut f32, usize, (usize, usize)),
    accumulate: bool,
    (lhs, lhs_strides, rhs, (rhs_rs, rhs_cs)): (&[f32], (usize, usize), &[f32], (usize, usize)),
) {
    use rayon::prelude::*;
    check_operands(
        (m, n, k),
        dst_len,
        (dst_rs, dst_cs),
        lhs,
        lhs_strides,
        rhs,
        (rhs_rs, rhs_cs),
    );
    /// `dst`'s address, shared by the slabs: each writes only its own columns.
    struct Columns(*mut f32);
    // SAFETY: the slabs' column ranges are disjoint, so no two tasks write one element.
    unsafe impl Sync for Columns {}
    impl Columns {
        /// A method, not a field read: a closure reading `.0` would capture the bare pointer.
        fn from(&self, column: usize, stride: usize) -> *mut f32 {
            self.0.wrapping_add(column * stride)
        }
    }
    let columns = Columns(dst);
    (0..n.div_ceil(SLAB_COLUMNS))
        .into_par_iter()
        .for_each(|slab| {
            let first = slab * SLAB_COLUMNS;
            let width = SLAB_COLUMNS.min(n - first);
            // SAFETY: `check_operands` kept every strided access of the whole product inside the
            // operands; a slab's accesses are a subset of them, and its `dst` columns are its own.
            unsafe {
                serial_gemm(
                    (m, width, k),
                    columns.from(first, dst_cs),
                    (dst_rs, dst_cs),
                    accumulate,
                    lhs.as_ptr(),
                    lhs_strides,
                    rhs.as_ptr().add(first * rhs_cs),
                    (rhs_rs, rhs_cs),
                )
            }
        });
}

/// Columns of `dst` per task of [`parallel_matmul`].
const SLAB_COLUMNS: usize = 128;

/// [`matmul`] on raw pointers, after [`check_operands`].
///
/// # Safety
/// Every strided access of the three operands must be in bounds, and `dst` must not overlap the
/// other two or be written by anyone else meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn serial_gemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const f32,
    (rhs_rs, rhs_cs): (usize, usize),
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dst_cs as isize,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// Panics unless every strided access of an `m x n x k` product stays inside its slice.
#[allow(clippy::too_many_arguments)]
fn check_operands(
    (m, n, k): (usize, usize, usize),
    dst_len: usize,
    (dst_rs, dst_cs): (usize, usize),
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(
        dst_len >= last(m, n, dst_rs, dst_cs),
        "matmul: dst too short"
    );
    assert!(
        lhs.len() >= last(m, k, lhs_rs, lhs_cs),
        "matmul: lhs too short"
    );
    assert!(
        rhs.len() >= last(k, n, rhs_rs, rhs_cs),
        "matmul: rhs too short"
    );
}

/// Adds per-task partial sums in task order: the tasks are cut by shape alone, so a result never
/// depends on the thread count or on scheduling, and the same seed trains the same weights.
pub(crate) fn sum_in_order<T: Copy + std::ops::AddAssign>(partials: Vec<Vec<T>>) -> Vec<T> {
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_default();
    for p in parts {
        total.iter_mut().zip(&p).for_each(|(t, v)| *t += *v);
    }
    total
}

/// Runs `f` with scratch slices of this thread's, of the lengths asked for. Their contents are
/// left over from earlier calls: `f` must write every element it reads. Reusing one buffer per
/// pool thread spares each task the allocation, zeroing and page faults of megabytes of patches.
/// `f` must not re-enter (no rayon inside), or the second borrow panics.
pub(crate) fn with_scratch<const N: usize, R>(
    lens: [usize; N],
    f: impl FnOnce([&mut [f32]; N]) -> R,
) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| {
        let mut buffer = cell.borrow_mut();
        let total = lens.iter().sum();
        if buffer.len() < total {
            buffer.resize(total, 0.0);
        }
        let mut rest = &mut buffer[..total];
        f(std::array::from_fn(|i| {
            let (slice, tail) = std::mem::take(&mut rest).split_at_mut(lens[i]);
            rest = tail;
            slice
        }))
    })
}

/// Runs `f` on a thread of rayon's pool when `device` is the CPU, and in place otherwise.
///
/// Called from outside the pool, every parallel op hands its work to the pool and puts the
/// calling thread to sleep until it is done: a hand-off, a wake-up and a sleep per op. A training
/// step on a small batch runs a hundred ops. On a pool thread the ops' loops start at once and
/// the other threads steal their shares. Other devices keep the calling thread, where their
/// context is bound.
pub(crate) fn on_pool<R: Send>(device: &candle_core::Device, f: impl FnOnce() -> R + Send) -> R {
    if device.is_cpu() {
        rayon::scope(|_| f())
    } else {
        f()
    }
}

/// Images per rayon task: enough work per task to amortise scheduling, small enough to balance.
pub(crate) fn images_per_task(per_image_flops: usize) -> usize {
    (200_000 / per_image_flops.max(1)).clamp(1, 64)
}

/// A row-major `[rows, cols]` matrix as row-major `[cols, rows]`, in square tiles: a tile's
/// source rows and destination rows both stay in cache, where an element-by-element transpose
/// strides through one of them.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 16;
    let mut out = vec![0f32; values.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}
