//! Times each convolution shape of `larger` on 1,000 random images (the inference batch), alone,
//! the fastest of seven runs, with its GFLOP/s: where a `larger` forward spends its conv time.
//! `cargo run --release --example conv_layers`.

use candle_core::{Device, Tensor};
use std::time::Instant;
use wna::kernels::Conv2d;

fn main() -> candle_core::Result<()> {
    let n = 1000;
    // (c_in, input size, c_out, kernel, stride, padding, how many `larger` has)
    let layers = [
        (1, 28, 16, 7, 2, 3, 1),
        (16, 14, 16, 3, 1, 1, 4),
        (16, 14, 32, 3, 1, 1, 1),
        (32, 14, 32, 3, 1, 1, 1),
        (32, 14, 64, 3, 2, 1, 1),
        (64, 7, 64, 3, 1, 1, 5),
        (64, 7, 128, 3, 1, 1, 1),
        (128, 7, 128, 3, 1, 1, 3),
    ];
    let mut total = 0.0;
    for (c, s, k, ks, st, p, count) in layers {
        let x = Tensor::randn(0f32, 1.0, (n, c, s, s), &Device::Cpu)?;
        let w = Tensor::randn(0f32, 0.1, (k, c, ks, ks), &Device::Cpu)?;
        let b = Tensor::zeros(k, candle_core::DType::F32, &Device::Cpu)?;
        let op = Conv2d {
            stride: st,
            padding: p,
        };
        let _ = x.apply_op3_no_bwd(&w, &b, &op)?;
        // The fastest of seven: the machine's other load only ever adds time.
        let mut secs = f64::INFINITY;
        for _ in 0..7 {
            let t = Instant::now();
            let _ = x.apply_op3_no_bwd(&w, &b, &op)?;
            secs = secs.min(t.elapsed().as_secs_f64());
        }
        let o = (s + 2 * p - ks) / st + 1;
        let flops = 2.0 * (n * k * o * o * c * ks * ks) as f64;
        total += secs * count as f64;
        println!(
            "{c:>3}->{k:>3} {ks}x{ks}/{st} at {o:>2}: {:>6.1} ms x{count}  {:>5.0} GFLOP/s",
            secs * 1e3,
            flops / secs / 1e9
        );
    }
    println!(
        "convs of one 1000-image larger forward: {:.0} ms",
        total * 1e3
    );
    Ok(())
}
