//! The first layer's direct convolution and its weight gradient in AVX2 + FMA intrinsics: left
//! to the compiler, the 24-wide rows came out as shuffles and spills, slower than a gemm.
//! Each output row is three 8-lane vectors; every sum runs in the same order on every call, so
//! results do not depend on the batch or on the other members.

use std::arch::x86_64::*;

const SIDE: usize = 28;
const K: usize = 5;
const OUT: usize = 24;
const CHANNELS: usize = 6;

/// Six 24 x 24 output planes of one 28 x 28 image: `out[c] = bias[c] + w[c] * x`.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `x` holds 784 values, `w` 150, `bias` 6 and `out` 3,456.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn conv1_image(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32]) {
    assert!(x.len() >= SIDE * SIDE && w.len() >= CHANNELS * K * K && bias.len() >= CHANNELS);
    assert!(out.len() >= CHANNELS * OUT * OUT);
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    for (c, &bc) in bias.iter().enumerate().take(CHANNELS) {
        let wc = w.as_ptr().add(c * K * K);
        for oy in 0..OUT {
            let b = _mm256_set1_ps(bc);
            let (mut a0, mut a1, mut a2) = (b, b, b);
            for ky in 0..K {
                let row = xp.add((oy + ky) * SIDE);
                for kx in 0..K {
                    let wv = _mm256_broadcast_ss(&*wc.add(ky * K + kx));
                    let src = row.add(kx);
                    a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src), a0);
                    a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src.add(8)), a1);
                    a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src.add(16)), a2);
                }
            }
            let dst = op.add((c * OUT + oy) * OUT);
            _mm256_storeu_ps(dst, a0);
            _mm256_storeu_ps(dst.add(8), a1);
            _mm256_storeu_ps(dst.add(16), a2);
        }
    }
}

/// Adds one image's weight gradient `sum over positions of d[c] * x` into `g` (`[6, 25]`).
///
/// # Safety
/// The CPU must have AVX2 and FMA; `x` holds 784 values, `d` 3,456 and `g` 150.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn conv1_weight_grad(x: &[f32], d: &[f32], g: &mut [f32]) {
    assert!(x.len() >= SIDE * SIDE && d.len() >= CHANNELS * OUT * OUT);
    assert!(g.len() >= CHANNELS * K * K);
    let (xp, dp) = (x.as_ptr(), d.as_ptr());
    for c in 0..CHANNELS {
        for ky in 0..K {
            let mut total = [0f32; K];
            for lane in 0..3 {
                let mut acc = [_mm256_setzero_ps(); K];
                for oy in 0..OUT {
                    let dv = _mm256_loadu_ps(dp.add((c * OUT + oy) * OUT + 8 * lane));
                    let row = xp.add((oy + ky) * SIDE + 8 * lane);
                    for (kx, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(dv, _mm256_loadu_ps(row.add(kx)), *a);
                    }
                }
                for (t, a) in total.iter_mut().zip(acc) {
                    *t += horizontal_sum(a);
                }
            }
            for (kx, t) in total.iter().enumerate() {
                g[c * K * K + ky * K + kx] += t;
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn horizontal_sum(v: __m256) -> f32 {
    let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
    _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
}
