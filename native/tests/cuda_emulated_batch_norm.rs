//! The CUDA batch-norm kernels (`src/cuda/batch_norm.cu`), run by the host emulator with the
//! launch plan the GPU path builds (`kernels::batch_norm_gpu`), against the CPU ops they stand
//! in for: the batch statistics (`channel_statistics`), the forward (the same bits, given the
//! same statistics) and the fused backward (dx, dgamma and dbeta of `kernels::BatchNorm`), with
//! and without the ReLU and batch statistics, on planes and on `[n, c]` rows, with a reduction
//! split into chunks whose last one is short.

mod common;
#[path = "common/emulator.rs"]
mod emulator;

use candle_core::{Device, Shape, Tensor, Var};
use common::max_rel_diff;
use std::sync::OnceLock;
use wna::kernels::batch_norm_gpu::{BnLaunch, BnShape, THREADS};
use wna::kernels::{channel_statistics, BatchNorm};

type Statistics = unsafe extern "C" fn(u32, u32, u32, *const f32, *const BnShape, *mut f64);
type Finish = unsafe extern "C" fn(u32, u32, *const f64, u32, *const BnShape, *mut f32);
type Forward = unsafe extern "C" fn(
    u32,
    u32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *mut f32,
    *const BnShape,
    u32,
);
type GradSums = unsafe extern "C" fn(
    u32,
    u32,
    u32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const BnShape,
    u32,
    *mut f64,
);
type GradInput = unsafe extern "C" fn(
    u32,
    u32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const BnShape,
    u32,
    u32,
    *mut f32,
);

struct Kernels {
    statistics: Statistics,
    statistics_finish: Finish,
    forward: Forward,
    grad_sums: GradSums,
    grad_finish: Finish,
    grad_input: GradInput,
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        let lib = emulator::library();
        // SAFETY: each type above is its launcher's C signature in tests/cuda_emulator.
        unsafe {
            Kernels {
                statistics: lib.launcher("emu_bn_statistics"),
                statistics_finish: lib.launcher("emu_bn_statistics_finish"),
                forward: lib.launcher("emu_bn_forward"),
                grad_sums: lib.launcher("emu_bn_grad_sums"),
                grad_finish: lib.launcher("emu_bn_grad_finish"),
                grad_input: lib.launcher("emu_bn_grad_input"),
            }
        }
    })
}

/// Uniform values in [lo, hi) from wna's Philox stream `stream`.
fn values(n: usize, stream: u32, lo: f32, hi: f32) -> Vec<f32> {
    let mut v = vec![0f32; n];
    wna::philox::Philox::new(9, stream, 0).fill_uniform(&mut v);
    v.iter().map(|u| lo + (hi - lo) * u).collect()
}

fn all_written<T: Copy + Into<f64>>(what: &str, v: &[T]) {
    assert!(
        v.iter().all(|x| (*x).into().is_finite()),
        "{what}: an output was not written"
    );
}

/// The emulated `[mean; var]`, as `gpu::statistics` computes it.
fn emulated_statistics(plan: &BnLaunch, x: &[f32]) -> Vec<f32> {
    let k = kernels();
    let (gx, gy, _) = plan.reduction_grid();
    let mut partials = vec![f64::NAN; plan.partials_len()];
    let mut out = vec![f32::NAN; 2 * plan.shape.channels as usize];
    // SAFETY: buffers of the sizes the kernels read and write for `plan`.
    unsafe {
        (k.statistics)(
            gx,
            gy,
            THREADS,
            x.as_ptr(),
            &plan.shape,
            partials.as_mut_ptr(),
        );
        let blocks = plan.finish_blocks();
        let p = partials.as_ptr();
        (k.statistics_finish)(
            blocks,
            THREADS,
            p,
            plan.chunks,
            &plan.shape,
            out.as_mut_ptr(),
        );
    }
    all_written("statistics", &out);
    out
}

/// The emulated `[dx, dgamma, dbeta]`, as `gpu::grad` computes it.
#[allow(clippy::too_many_arguments)]
fn emulated_grad(
    plan: &BnLaunch,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    mean: &[f32],
    invstd: &[f32],
    gamma: &[f32],
    relu: bool,
    batch_statistics: bool,
) -> Vec<f32> {
    let k = kernels();
    let (gx, gy, _) = plan.reduction_grid();
    let c = plan.shape.channels as usize;
    let mut partials = vec![f64::NAN; plan.partials_len()];
    let mut out = vec![f32::NAN; x.len() + 2 * c];
    let (dx, sums) = out.split_at_mut(x.len());
    let (m, s, g) = (mean.as_ptr(), invstd.as_ptr(), gamma.as_ptr());
    let (xp, yp, dyp) = (x.as_ptr(), y.as_ptr(), dy.as_ptr());
    // SAFETY: buffers of the sizes the kernels read and write for `plan`.
    unsafe {
        let p = partials.as_mut_ptr();
        (k.grad_sums)(
            gx,
            gy,
            THREADS,
            xp,
            yp,
            dyp,
            m,
            s,
            &plan.shape,
            relu as u32,
            p,
        );
        let blocks = plan.finish_blocks();
        let p = partials.as_ptr();
        (k.grad_finish)(
            blocks,
            THREADS,
            p,
            plan.chunks,
            &plan.shape,
            sums.as_mut_ptr(),
        );
        let blocks = plan.elementwise_blocks();
        let (sp, shape) = (sums.as_ptr(), &plan.shape);
        let flags = (relu as u32, batch_statistics as u32);
        let d = dx.as_mut_ptr();
        (k.grad_input)(
            blocks, THREADS, xp, yp, dyp, m, s, g, sp, shape, flags.0, flags.1, d,
        );
    }
    all_written("gradients", &out);
    out
}

fn check(dims: &[usize], relu: bool, batch_statistics: bool) {
    let dev = Device::Cpu;
    let (images, c) = (dims[0], dims[1]);
    let spatial: usize = dims[2..].iter().product();
    let n = images * c * spatial;
    let x = values(n, 1, -0.7, 1.3);
    let gamma = values(c, 2, 0.5, 1.5);
    let beta = values(c, 3, -0.3, 0.3);
    let dy = values(n, 4, -1.0, 1.0);
    let plan = BnLaunch::new(&Shape::from(dims)).unwrap();

    // Statistics: both sum in f64, in different orders.
    let (mean, var) = channel_statistics(&x, c, spatial);
    let got = emulated_statistics(&plan, &x);
    assert!(
        max_rel_diff(&mean, &got[..c]) <= 1e-6,
        "{dims:?}: means differ"
    );
    assert!(
        max_rel_diff(&var, &got[c..]) <= 1e-6,
        "{dims:?}: variances differ"
    );

    // The forward, from the CPU's statistics: the CPU op's bits.
    let invstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
    let op = BatchNorm {
        mean: mean.clone(),
        invstd: invstd.clone(),
        batch_statistics,
        relu,
    };
    let xv = Var::from_tensor(&Tensor::from_slice(&x, dims, &dev).unwrap()).unwrap();
    let gv = Var::from_tensor(&Tensor::from_slice(&gamma, c, &dev).unwrap()).unwrap();
    let bv = Var::from_tensor(&Tensor::from_slice(&beta, c, &dev).unwrap()).unwrap();
    let y = xv.as_tensor().apply_op3(&gv, &bv, op).unwrap();
    let want_y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
    let mut got_y = vec![f32::NAN; n];
    let k = kernels();
    // SAFETY: buffers of the sizes the kernel reads and writes for `plan`.
    unsafe {
        (k.forward)(
            plan.elementwise_blocks(),
            THREADS,
            x.as_ptr(),
            gamma.as_ptr(),
            beta.as_ptr(),
            mean.as_ptr(),
            invstd.as_ptr(),
            got_y.as_mut_ptr(),
            &plan.shape,
            relu as u32,
        )
    };
    let same = want_y
        .iter()
        .zip(&got_y)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "{dims:?}: the forward is not the CPU op's bits");

    // The backward: the CPU op's autograd against the emulated kernels.
    let r = Tensor::from_slice(&dy, dims, &dev).unwrap();
    let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |v: &Var| -> Vec<f32> {
        let g = grads.get(v).unwrap();
        g.flatten_all().unwrap().to_vec1().unwrap()
    };
    let got = emulated_grad(
        &plan,
        &x,
        &want_y,
        &dy,
        &mean,
        &invstd,
        &gamma,
        relu,
        batch_statistics,
    );
    let (dx, rest) = got.split_at(n);
    let (dgamma, dbeta) = rest.split_at(c);
    for (what, want, got) in [
        ("dx", flat(&xv), dx),
        ("dgamma", flat(&gv), dgamma),
        ("dbeta", flat(&bv), dbeta),
    ] {
        let diff = max_rel_diff(&want, got);
        assert!(diff <= 1e-5, "{dims:?}: {what} differs by {diff:e}");
    }
}

#[test]
fn planes_with_relu_and_batch_statistics() {
    check(&[5, 3, 7, 7], true, true);
}

#[test]
fn rows_of_a_linear_layer() {
    check(&[9, 6], false, true);
}

#[test]
fn fixed_statistics_without_relu() {
    check(&[4, 8, 5, 5], false, false);
}

#[test]
fn a_split_reduction_with_a_short_last_chunk() {
    let dims = [37, 130, 2, 2];
    let plan = BnLaunch::new(&Shape::from(dims.as_slice())).unwrap();
    assert!(plan.chunks > 1, "{plan:?}");
    assert_ne!(37 % plan.shape.per_chunk, 0, "{plan:?}");
    check(&dims, true, true);
}
