//! The CUDA max-pool kernels (`src/cuda/pool.cu`), run by the host emulator with the launch plan
//! the GPU path builds (`kernels::max_pool_gpu`), against the CPU op: the forward and the routed
//! backward must be its bits, on even and odd planes, with ties (a constant background) and a
//! NaN in a window.

#[path = "common/emulator.rs"]
mod emulator;

use candle_core::{Device, Tensor, Var};
use std::sync::OnceLock;
use wna::kernels::max_pool_gpu::{PoolShape, THREADS};
use wna::kernels::MaxPool2;

type Forward = unsafe extern "C" fn(u32, u32, *const f32, *mut f32, *const PoolShape);
type Grad = unsafe extern "C" fn(u32, u32, *const f32, *const f32, *mut f32, *const PoolShape);

struct Kernels {
    forward: Forward,
    grad: Grad,
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        let lib = emulator::library();
        // SAFETY: each type above is its launcher's C signature in tests/cuda_emulator.
        unsafe {
            Kernels {
                forward: lib.launcher("emu_max_pool2"),
                grad: lib.launcher("emu_max_pool2_grad"),
            }
        }
    })
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Activations after a ReLU: a quarter exactly zero (ties), the rest uniform; one NaN.
fn activations(n: usize) -> Vec<f32> {
    let mut v = vec![0f32; n];
    wna::philox::Philox::new(3, 0, 0).fill_uniform(&mut v);
    let mut v: Vec<f32> = v.iter().map(|u| (u - 0.25).max(0.0)).collect();
    v[n / 3] = f32::NAN;
    v
}

fn check(dims: (usize, usize, usize, usize)) {
    let dev = Device::Cpu;
    let n = dims.0 * dims.1 * dims.2 * dims.3;
    let x = activations(n);
    let xv = Var::from_tensor(&Tensor::from_slice(&x, dims, &dev).unwrap()).unwrap();
    let y = xv.as_tensor().apply_op1(MaxPool2).unwrap();
    let want_y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
    let mut dy = vec![0f32; want_y.len()];
    wna::philox::Philox::new(3, 1, 0).fill_uniform(&mut dy);
    let r = Tensor::from_slice(&dy, y.shape(), &dev).unwrap();
    // The NaN's window gives NaN loss terms but the routing itself stays finite.
    let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let want_dx: Vec<f32> = grads
        .get(&xv)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    let s = PoolShape::new(&dims.into()).unwrap();
    let k = kernels();
    let mut got_y = vec![f32::NAN; s.output_len()];
    let mut got_dx = vec![f32::NAN; s.input_len()];
    // SAFETY: buffers of the sizes the kernels read and write for `s`.
    unsafe {
        let grid = PoolShape::blocks(s.output_len());
        (k.forward)(grid, THREADS, x.as_ptr(), got_y.as_mut_ptr(), &s);
        let grid = PoolShape::blocks(s.input_len());
        (k.grad)(
            grid,
            THREADS,
            x.as_ptr(),
            dy.as_ptr(),
            got_dx.as_mut_ptr(),
            &s,
        );
    }
    assert!(same_bits(&want_y, &got_y), "{dims:?}: the forward differs");
    assert!(
        same_bits(&want_dx, &got_dx),
        "{dims:?}: the backward differs"
    );
}

#[test]
fn even_planes() {
    check((3, 5, 8, 12));
}

#[test]
fn odd_planes_drop_the_last_row_and_column() {
    check((2, 7, 13, 11));
}
