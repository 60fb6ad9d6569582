//! Times the forward, input gradient and weight gradient of zoo net 11.1's two convolutions on
//! one 64-image training batch (the zoo's batch), the fastest of many runs, with GFLOP/s: where
//! a CNN training step spends its conv time. `cargo run --release --example train_conv_layers`.

use candle_core::{Device, Tensor, Var};
use std::time::Instant;
use wna::kernels::Conv2d;

fn fastest(mut f: impl FnMut() -> candle_core::Result<()>) -> candle_core::Result<f64> {
    f()?;
    let mut secs = f64::INFINITY;
    for _ in 0..30 {
        let t = Instant::now();
        f()?;
        secs = secs.min(t.elapsed().as_secs_f64());
    }
    Ok(secs)
}

fn main() -> candle_core::Result<()> {
    let n = 64;
    // (c_in, input size, c_out, kernel, padding): conv1 and conv2 of zoo net 11.1.
    for (c, s, k, ks, p) in [(1, 28, 16, 8, 2), (16, 12, 32, 6, 2)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, s, s), &Device::Cpu)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (k, c, ks, ks), &Device::Cpu)?)?;
        let b = Var::from_tensor(&Tensor::zeros(k, candle_core::DType::F32, &Device::Cpu)?)?;
        let op = || Conv2d {
            stride: 1,
            padding: p,
        };
        let o = s + 2 * p - ks + 1;
        let flops = 2.0 * (n * k * o * o * c * ks * ks) as f64;
        let forward = fastest(|| x.apply_op3_no_bwd(&w, &b, &op()).map(|_| ()))?;
        let both = fastest(|| {
            let y = x.apply_op3(&w, &b, op())?;
            y.sum_all()?.backward().map(|_| ())
        })?;
        println!(
            "{c:>2}->{k:>2} {ks}x{ks} at {o:>2}: forward {:>5.2} ms ({:>4.0} GFLOP/s), forward + \
             both gradients {:>5.2} ms ({:>4.0} GFLOP/s)",
            forward * 1e3,
            flops / forward / 1e9,
            both * 1e3,
            3.0 * flops / both / 1e9
        );
    }
    Ok(())
}
