//! The Frechet distance between two Gaussians fitted to feature sets (Heusel et al., 2017, FID):
//! |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)).
//!
//! tr((S_a S_b)^(1/2)) is computed as the sum of the square roots of the eigenvalues of
//! S_a^(1/2) S_b S_a^(1/2), which is symmetric and has the same spectrum as S_a S_b; this avoids
//! the non-symmetric matrix square root (scipy's `sqrtm`) and its complex round-off.

use crate::error::{Error, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance (divided by n - 1, as numpy's `np.cov`) of `n x dim` row-major features.
pub fn gaussian(features: &[f32], dim: usize, what: &str) -> Result<(DVector<f64>, DMatrix<f64>)> {
    if dim == 0 || !features.len().is_multiple_of(dim) || features.len() / dim < 2 {
        return Err(Error::Shape {
            op: "frechet",
            expected: format!("{what}: at least 2 rows of {dim} features"),
            got: format!("{} values", features.len()),
        });
    }
    if let Some(i) = features.iter().position(|v| !v.is_finite()) {
        crate::bail!(
            NotFinite,
            "frechet: {what} row {} has a non-finite feature at column {}",
            i / dim,
            i % dim
        );
    }
    let n = features.len() / dim;
    let x = DMatrix::from_row_iterator(n, dim, features.iter().map(|&v| v as f64));
    let mean = x.row_mean().transpose();
    let centred = DMatrix::from_fn(n, dim, |i, j| x[(i, j)] - mean[j]);
    let cov = centred.tr_mul(&centred) / (n as f64 - 1.0);
    Ok((mean, cov))
}

/// The square root of a symmetric positive semi-definite matrix, with round-off negatives
/// clamped to zero.
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(m.clone());
    let roots = eig.eigenvalues.map(|v| v.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

/// The Frechet distance between the Gaussians of two feature sets with `dim` columns.
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> Result<f64> {
    let (mu_a, cov_a) = gaussian(a, dim, "the first set")?;
    let (mu_b, cov_b) = gaussian(b, dim, "the second set")?;
    let root_a = sqrt_psd(&cov_a);
    let mut inner = &root_a * &cov_b * &root_a;
    // Symmetrise what round-off left unsymmetric before the symmetric eigensolver sees it.
    inner = (&inner + inner.transpose()) * 0.5;
    let trace_root: f64 = SymmetricEigen::new(inner)
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    let distance =
        (&mu_a - &mu_b).norm_squared() + cov_a.trace() + cov_b.trace() - 2.0 * trace_root;
    Ok(distance.max(0.0))
}
