//! The CUDA convolution kernels (`src/cuda/conv.cu`), run by the host emulator with the launch
//! plan the GPU path builds (`kernels::conv2d_gpu`), against the CPU ops they stand in for: the
//! forward, the input gradient, and the weight and bias gradients of `kernels::Conv2d`, over
//! geometries that take every branch (padding, stride 2, a non-square kernel, several row and
//! column tiles, a split reduction with a short last chunk).

mod common;
#[path = "common/emulator.rs"]
mod emulator;

use candle_core::{Device, Tensor, Var};
use common::max_rel_diff;
use std::sync::OnceLock;
use wna::kernels::conv2d_gpu::{ConvLaunch, ConvPass, ConvShape, THREADS};
use wna::kernels::{Conv2d, ConvGeometry};

type Forward = unsafe extern "C" fn(
    u32,
    u32,
    u32,
    u32,
    *const f32,
    *const f32,
    *const f32,
    *mut f32,
    *const ConvShape,
);
type GradInput =
    unsafe extern "C" fn(u32, u32, u32, u32, *const f32, *const f32, *mut f32, *const ConvShape);
type GradWeight =
    unsafe extern "C" fn(u32, u32, u32, u32, *const f32, *const f32, *mut f32, *const ConvShape);
type Reduce = unsafe extern "C" fn(u32, u32, *const f32, u32, *const ConvShape, *mut f32);

struct Kernels {
    forward: Forward,
    grad_input: GradInput,
    grad_weight: GradWeight,
    reduce: Reduce,
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        let lib = emulator::library();
        // SAFETY: each type above is its launcher's C signature in tests/cuda_emulator.
        unsafe {
            Kernels {
                forward: lib.launcher("emu_conv_forward"),
                grad_input: lib.launcher("emu_conv_grad_input"),
                grad_weight: lib.launcher("emu_conv_grad_weight"),
                reduce: lib.launcher("emu_conv_grad_weight_reduce"),
            }
        }
    })
}

/// Uniform values in [-1, 1) from wna's Philox stream `stream`.
fn values(n: usize, stream: u32) -> Vec<f32> {
    let mut v = vec![0f32; n];
    wna::philox::Philox::new(5, stream, 0).fill_uniform(&mut v);
    v.iter().map(|u| 2.0 * u - 1.0).collect()
}

#[allow(clippy::too_many_arguments)]
fn geometry(
    batch: usize,
    c_in: usize,
    side: usize,
    c_out: usize,
    kernel: (usize, usize),
    stride: usize,
    padding: usize,
) -> ConvGeometry {
    ConvGeometry {
        batch,
        c_in,
        height: side,
        width: side,
        c_out,
        kernel_h: kernel.0,
        kernel_w: kernel.1,
        stride,
        padding,
    }
}

/// What the CPU op gives: the output, and the gradients of `sum(y * dy)` for x, w and b.
struct Reference {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

fn reference(g: &ConvGeometry, x: &[f32], w: &[f32], b: &[f32], dy: &[f32]) -> Reference {
    let dev = Device::Cpu;
    let shape_x = (g.batch, g.c_in, g.height, g.width);
    let x = Var::from_tensor(&Tensor::from_slice(x, shape_x, &dev).unwrap()).unwrap();
    let shape_w = (g.c_out, g.c_in, g.kernel_h, g.kernel_w);
    let w = Var::from_tensor(&Tensor::from_slice(w, shape_w, &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::from_slice(b, g.c_out, &dev).unwrap()).unwrap();
    let op = Conv2d {
        stride: g.stride,
        padding: g.padding,
    };
    let y = x.as_tensor().apply_op3(&w, &b, op).unwrap();
    let dy = Tensor::from_slice(dy, y.shape(), &dev).unwrap();
    let grads = (&y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    Reference {
        y: flat(&y),
        dx: flat(grads.get(&x).unwrap()),
        dw: flat(grads.get(&w).unwrap()),
        db: flat(grads.get(&b).unwrap()),
    }
}

/// Runs `launch` in the emulator, as the GPU path does.
fn emulated(launch: &ConvLaunch, inputs: (&[f32], &[f32], &[f32]), out_len: usize) -> Vec<f32> {
    let k = kernels();
    let (gx, gy, gz) = launch.grid;
    let s = &launch.shape;
    // NaN until written: a missed element fails the finiteness check below.
    let mut out = vec![f32::NAN; out_len];
    // SAFETY: buffers of the sizes the kernels read and write for `launch`.
    unsafe {
        match launch.pass {
            ConvPass::Forward => {
                let (x, w, b) = inputs;
                let o = out.as_mut_ptr();
                (k.forward)(
                    gx,
                    gy,
                    gz,
                    THREADS,
                    x.as_ptr(),
                    w.as_ptr(),
                    b.as_ptr(),
                    o,
                    s,
                )
            }
            ConvPass::GradInput => {
                let (dy, w, _) = inputs;
                let o = out.as_mut_ptr();
                (k.grad_input)(gx, gy, gz, THREADS, dy.as_ptr(), w.as_ptr(), o, s)
            }
            ConvPass::GradWeight => {
                let (x, dy, _) = inputs;
                let mut partials = vec![f32::NAN; launch.partials_len()];
                let p = partials.as_mut_ptr();
                (k.grad_weight)(gx, gy, gz, THREADS, x.as_ptr(), dy.as_ptr(), p, s);
                let blocks = launch.reduce_blocks();
                (k.reduce)(blocks, THREADS, partials.as_ptr(), gz, s, out.as_mut_ptr());
            }
        }
    }
    assert!(
        out.iter().all(|v| v.is_finite()),
        "{:?}: an output was not written",
        launch.pass
    );
    out
}

/// Forward, input gradient and weight gradient of `g`, emulated against the CPU op. The CPU
/// sums in another order, so they agree within float rounding, not bit for bit.
fn check(g: ConvGeometry) {
    let x = values(g.batch * g.c_in * g.height * g.width, 1);
    let w = values(g.c_out * g.c_in * g.kernel_h * g.kernel_w, 2);
    let b = values(g.c_out, 3);
    let dy = values(g.batch * g.c_out * g.out_h() * g.out_w(), 4);
    let want = reference(&g, &x, &w, &b, &dy);

    let forward = ConvLaunch::new(ConvPass::Forward, &g).unwrap();
    let y = emulated(&forward, (&x, &w, &b), want.y.len());
    let grad_input = ConvLaunch::new(ConvPass::GradInput, &g).unwrap();
    let dx = emulated(&grad_input, (&dy, &w, &[]), want.dx.len());
    let grad_weight = ConvLaunch::new(ConvPass::GradWeight, &g).unwrap();
    let both = emulated(&grad_weight, (&x, &dy, &[]), want.dw.len() + want.db.len());
    let (dw, db) = both.split_at(want.dw.len());

    for (what, want, got) in [
        ("output", &want.y, &y[..]),
        ("input gradient", &want.dx, &dx[..]),
        ("weight gradient", &want.dw, dw),
        ("bias gradient", &want.db, db),
    ] {
        let diff = max_rel_diff(want, got);
        assert!(diff <= 1e-5, "{g:?}: {what} differs by {diff:e}");
    }
}

#[test]
fn padded_5x5_over_two_row_tiles_and_two_chunks() {
    let g = geometry(3, 1, 12, 70, (5, 5), 1, 2);
    let plan = ConvLaunch::new(ConvPass::GradWeight, &g).unwrap();
    assert_eq!(plan.grid.1, 2, "70 output channels take two row tiles");
    assert!(plan.grid.2 >= 2, "the reduction is split: {:?}", plan.grid);
    check(g);
}

#[test]
fn stride_two_with_two_column_tiles_of_taps() {
    let g = geometry(2, 9, 9, 16, (3, 3), 2, 1);
    let plan = ConvLaunch::new(ConvPass::GradWeight, &g).unwrap();
    assert_eq!(plan.grid.0, 2, "82 gradient columns take two column tiles");
    check(g);
}

#[test]
fn unpadded_non_square_kernel() {
    check(geometry(5, 4, 7, 8, (2, 3), 1, 0));
}

#[test]
fn the_split_depends_on_the_shapes_alone() {
    // smaller's conv2 at a training batch: a fixed chunk, a multiple of the 16-index step,
    // whatever GPU runs it.
    let g = geometry(128, 32, 13, 64, (3, 3), 1, 0);
    let plan = ConvLaunch::new(ConvPass::GradWeight, &g).unwrap();
    let k: usize = 128 * 11 * 11;
    assert_eq!(plan.shape.k_chunk % 16, 0);
    assert_eq!(
        plan.grid.2 as usize,
        k.div_ceil(plan.shape.k_chunk as usize)
    );
    // Enough blocks to fill an H100 a few times over, and not thousands of partial sums.
    let blocks = plan.grid.0 * plan.grid.1 * plan.grid.2;
    assert!((512..=2048).contains(&blocks), "{blocks} blocks");
}
