//! Gaussian noise with the mean and covariance of real images: of all distributions with the
//! data's first two moments it has the highest entropy, so it adds no structure of its own. A
//! well-trained classifier calls nearly all independent-pixel noise one class; noise with the
//! data's pixel correlations reaches every class, and each class keeps its own image.

use super::PIXELS;
use crate::error::Result;
use crate::model::check_images;
use candle_core::{DType, Device, Tensor};

/// Added to the covariance's diagonal: MNIST's border pixels never vary, and a zero variance
/// has no Cholesky factor.
const JITTER: f64 = 1e-4;
/// Rows per covariance chunk.
const CHUNK: usize = 4096;

/// The fitted mean and covariance factor, with tensors on the model's device.
#[derive(Debug)]
pub struct DataNoise {
    /// Mean image, 784 values.
    pub mean: Vec<f32>,
    /// Lower-triangular Cholesky factor `L` of the covariance (row-major, 784 x 784):
    /// `mean + L z` with `z ~ N(0, I)` has the data's covariance.
    pub factor: Vec<f32>,
    /// Images the moments were estimated from.
    pub images: usize,
    mean_t: Tensor,
    factor_t: Tensor,
}

impl DataNoise {
    /// Estimates mean and covariance of `images` (n x 784 pixels, n >= 2).
    pub fn fit(images: &[f32], device: &Device) -> Result<Self> {
        check_images("data noise", images)?;
        let n = images.len() / PIXELS;
        if n < 2 {
            crate::bail!(
                InvalidArgument,
                "data noise: needs at least 2 images to estimate a covariance, got {n}"
            );
        }
        let mut mean = vec![0f64; PIXELS];
        for img in images.chunks(PIXELS) {
            for (m, &v) in mean.iter_mut().zip(img) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        // Centred chunks through one f32 matmul each, summed in f64.
        let mut cov = vec![0f64; PIXELS * PIXELS];
        let mean_cpu = Tensor::from_slice(&mean32, (1, PIXELS), &Device::Cpu)?;
        for chunk in images.chunks(CHUNK * PIXELS) {
            let rows = chunk.len() / PIXELS;
            let x = Tensor::from_slice(chunk, (rows, PIXELS), &Device::Cpu)?
                .broadcast_sub(&mean_cpu)?;
            let xtx = x.t()?.matmul(&x)?.flatten_all()?.to_vec1::<f32>()?;
            for (c, v) in cov.iter_mut().zip(xtx) {
                *c += v as f64;
            }
        }
        for (i, c) in cov.iter_mut().enumerate() {
            *c /= (n - 1) as f64;
            if i % (PIXELS + 1) == 0 {
                *c += JITTER;
            }
        }
        let factor: Vec<f32> = cholesky(&cov, PIXELS).iter().map(|&v| v as f32).collect();
        let mean_t = Tensor::from_slice(&mean32, (1, PIXELS), device)?;
        let factor_t = Tensor::from_slice(&factor, (PIXELS, PIXELS), device)?
            .t()?
            .contiguous()?;
        Ok(Self {
            mean: mean32,
            factor,
            images: n,
            mean_t,
            factor_t,
        })
    }

    /// `clip(mean + contrast * L z, 0, 1)` for standard-normal rows `z` (`[b, 784]`).
    pub fn transform(&self, z: &Tensor, contrast: f32) -> Result<Tensor> {
        let x = (z.to_dtype(DType::F32)?.matmul(&self.factor_t)? * contrast as f64)?
            .broadcast_add(&self.mean_t)?;
        Ok(x.clamp(0f32, 1f32)?)
    }
}

/// The lower-triangular `L` with `L Lᵀ = a` of a symmetric positive definite `n x n` matrix.
fn cholesky(a: &[f64], n: usize) -> Vec<f64> {
    let mut l = vec![0f64; n * n];
    for j in 0..n {
        let row_j = l[j * n..j * n + j].to_vec();
        let d = a[j * n + j] - row_j.iter().map(|v| v * v).sum::<f64>();
        let diag = d.max(f64::MIN_POSITIVE).sqrt();
        l[j * n + j] = diag;
        for i in j + 1..n {
            let row_i = &l[i * n..i * n + j];
            let s = a[i * n + j] - row_i.iter().zip(&row_j).map(|(x, y)| x * y).sum::<f64>();
            l[i * n + j] = s / diag;
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::cholesky;

    #[test]
    fn cholesky_reproduces_the_matrix() {
        // a = B Bᵀ + I for a fixed B, so it is symmetric positive definite.
        let n = 5;
        let b: Vec<f64> = (0..n * n)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>()
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let l = cholesky(&a, n);
        for i in 0..n {
            for j in 0..n {
                let llt: f64 = (0..n).map(|k| l[i * n + k] * l[j * n + k]).sum();
                assert!(
                    (llt - a[i * n + j]).abs() < 1e-9,
                    "({i},{j}): {llt} vs {}",
                    a[i * n + j]
                );
                if j > i {
                    assert_eq!(l[i * n + j], 0.0);
                }
            }
        }
    }
}
