//! Helpers shared by the integration tests (each test file is its own crate and declares
//! `mod common;`).

/// The largest element-wise difference of `b` from `a`, relative to `a`'s largest magnitude.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}
