use candle_core::{Device, Module, Tensor};
use std::time::Instant;
fn main() -> candle_core::Result<()> {
    let d = Device::Cpu;
    let x = Tensor::randn(0f32, 1., (1000, 1, 28, 28), &d)?;
    let w1 = Tensor::randn(0f32, 1., (32, 1, 3, 3), &d)?;
    let x2 = Tensor::randn(0f32, 1., (1000, 32, 13, 13), &d)?;
    let w2 = Tensor::randn(0f32, 1., (64, 32, 3, 3), &d)?;
    for _ in 0..2 {
        let t = Instant::now();
        let y = x.conv2d(&w1, 0, 1, 1, 1)?;
        println!("conv1 {:?} {:?}", t.elapsed(), y.dims());
        let t = Instant::now();
        let y = x2.conv2d(&w2, 0, 1, 1, 1)?;
        println!("conv2 {:?} {:?}", t.elapsed(), y.dims());
        let y = x.conv2d(&w1, 0, 1, 1, 1)?;
        let t = Instant::now();
        let z = y.max_pool2d(2)?;
        println!("pool {:?} {:?}", t.elapsed(), z.dims());
        let t = Instant::now();
        let z = y.relu()?;
        println!("relu {:?} {:?}", t.elapsed(), z.dims());
        let m = Tensor::randn(0f32, 1., (1, 32, 1, 1), &d)?;
        let t = Instant::now();
        let z = y.broadcast_sub(&m)?.broadcast_div(&m)?;
        println!("bn-ish {:?} {:?}", t.elapsed(), z.dims());
        let a = Tensor::randn(0f32, 1., (1000, 1600), &d)?;
        let b = Tensor::randn(0f32, 1., (1600, 256), &d)?;
        let t = Instant::now();
        let z = a.matmul(&b)?;
        println!("mm {:?} {:?}", t.elapsed(), z.dims());
        let lin = candle_nn::Linear::new(b.t()?.contiguous()?, None);
        let t = Instant::now();
        let z = lin.forward(&a)?;
        println!("linear {:?} {:?}", t.elapsed(), z.dims());
    }
    Ok(())
}
