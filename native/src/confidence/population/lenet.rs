//! One LeNet-5 (LeCun et al., 1998, as the confidence study builds it) run forward and backward
//! by hand on a batch: conv 1->6 k5, ReLU, max-pool 2, conv 6->16 k5, ReLU, max-pool 2, then
//! fc 256->120->84->10 with ReLUs. conv1 runs as a direct convolution (`simd.rs`), conv2 and the
//! fc layers as `gemm`s over im2col patches; parameters are kept in PyTorch's layout and order,
//! so a member saves as a plain `state_dict` that the built-in `lenet5` loads.

use crate::kernels::matmul;

const SIDE: usize = 28;
const K: usize = 5;
const TAPS1: usize = K * K;
pub(crate) const C1: usize = 6;
const S1: usize = SIDE - K + 1; // 24
const P1: usize = S1 / 2; // 12
pub(crate) const C2: usize = 16;
const S2: usize = P1 - K + 1; // 8
const P2: usize = S2 / 2; // 4
const TAPS2: usize = C1 * TAPS1; // 150
pub const FLAT: usize = C2 * P2 * P2; // 256
pub const FC1: usize = 120;
pub const FC2: usize = 84;
pub const CLASSES: usize = 10;

/// Parameter names and shapes in PyTorch's `state_dict` order; `Params` stores them end to end.
pub const PARAMS: [(&str, &[usize]); 10] = [
    ("conv1.weight", &[C1, 1, K, K]),
    ("conv1.bias", &[C1]),
    ("conv2.weight", &[C2, C1, K, K]),
    ("conv2.bias", &[C2]),
    ("fc1.weight", &[FC1, FLAT]),
    ("fc1.bias", &[FC1]),
    ("fc2.weight", &[FC2, FC1]),
    ("fc2.bias", &[FC2]),
    ("fc3.weight", &[CLASSES, FC2]),
    ("fc3.bias", &[CLASSES]),
];

/// Where each parameter starts in the flat vector, and the total (44,426).
pub fn offsets() -> ([usize; 10], usize) {
    let mut at = [0; 10];
    let mut total = 0;
    for (i, (_, shape)) in PARAMS.iter().enumerate() {
        at[i] = total;
        total += shape.iter().product::<usize>();
    }
    (at, total)
}

/// `a * b + c`, fused where the CPU has FMA (the `FMA` builds below are compiled for it).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Whether this CPU runs the AVX2 + FMA builds of `forward` and `backward`.
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Compiles `$body::<true>` for AVX2 + FMA and `$body::<false>` for any CPU, and picks one at
/// run time (the library is built for the baseline x86-64, where the direct convolutions would
/// run on 4-wide SSE without FMA).
macro_rules! dispatch {
    ($name:ident, $fast:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $fast($($arg: $ty),*) {
            $body::<true>($($arg),*)
        }

        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if avx2_fma() {
                // SAFETY: the CPU has just been checked for both features.
                return unsafe { $fast($($arg),*) };
            }
            $body::<false>($($arg),*)
        }
    };
}

/// Direct 5x5 convolution of one image into six 24 x 24 planes (NCHW), each output row's 24
/// values held in registers across the 25 taps: at this width a gemm spends its time packing.
#[inline(always)]
fn conv1_image<const FMA: bool>(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: FMA builds run only after `avx2_fma()`; the slices have the sizes asserted.
        return unsafe { super::simd::conv1_image(x, w, bias, out) };
    }
    for c in 0..C1 {
        let wc = &w[c * TAPS1..][..TAPS1];
        for oy in 0..S1 {
            let mut acc = [bias[c]; S1];
            for ky in 0..K {
                let row = &x[(oy + ky) * SIDE..][..SIDE];
                for kx in 0..K {
                    let wv = wc[ky * K + kx];
                    let src = &row[kx..kx + S1];
                    for (a, &v) in acc.iter_mut().zip(src) {
                        *a = madd::<FMA>(wv, v, *a);
                    }
                }
            }
            out[(c * S1 + oy) * S1..][..S1].copy_from_slice(&acc);
        }
    }
}

/// Adds one image's conv1 weight gradient (d: six 24 x 24 planes) into `g` (`[6, 25]`); five
/// 24-lane accumulators per kernel row, reduced once per image.
#[inline(always)]
fn conv1_weight_grad<const FMA: bool>(x: &[f32], d: &[f32], g: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: as in `conv1_image`.
        return unsafe { super::simd::conv1_weight_grad(x, d, g) };
    }
    for c in 0..C1 {
        let dc = &d[c * S1 * S1..][..S1 * S1];
        for ky in 0..K {
            let mut acc = [[0f32; S1]; K];
            for oy in 0..S1 {
                let drow = &dc[oy * S1..][..S1];
                let row = &x[(oy + ky) * SIDE..][..SIDE];
                for (kx, a) in acc.iter_mut().enumerate() {
                    for ((a, &dv), &v) in a.iter_mut().zip(drow).zip(&row[kx..kx + S1]) {
                        *a = madd::<FMA>(dv, v, *a);
                    }
                }
            }
            for (kx, a) in acc.iter().enumerate() {
                g[c * TAPS1 + ky * K + kx] += a.iter().sum::<f32>();
            }
        }
    }
}

/// Per-thread buffers for one batch of up to `capacity` images, reused across members and steps.
pub struct Scratch {
    /// conv2's weight with its columns in im2col order `(ky, kx, channel)`, and its gradient.
    w2: Vec<f32>,
    g_w2: Vec<f32>,
    a1: Vec<f32>,
    arg1: Vec<u32>,
    p1: Vec<f32>,
    col2: Vec<f32>,
    a2: Vec<f32>,
    arg2: Vec<u32>,
    flat: Vec<f32>,
    h1: Vec<f32>,
    r1: Vec<f32>,
    h2: Vec<f32>,
    r2: Vec<f32>,
    logits: Vec<f32>,
    d_logits: Vec<f32>,
    d_r2: Vec<f32>,
    d_r1: Vec<f32>,
    d_flat: Vec<f32>,
    d_a2: Vec<f32>,
    d_col2: Vec<f32>,
    d_p1: Vec<f32>,
    d_a1: Vec<f32>,
}

impl Scratch {
    pub fn new(capacity: usize) -> Self {
        let z = |len: usize| vec![0f32; capacity * len];
        Self {
            w2: vec![0f32; C2 * TAPS2],
            g_w2: vec![0f32; C2 * TAPS2],
            a1: z(S1 * S1 * C1),
            arg1: vec![0; capacity * P1 * P1 * C1],
            p1: z(P1 * P1 * C1),
            col2: z(S2 * S2 * TAPS2),
            a2: z(S2 * S2 * C2),
            arg2: vec![0; capacity * FLAT],
            flat: z(FLAT),
            h1: z(FC1),
            r1: z(FC1),
            h2: z(FC2),
            r2: z(FC2),
            logits: z(CLASSES),
            d_logits: z(CLASSES),
            d_r2: z(FC2),
            d_r1: z(FC1),
            d_flat: z(FLAT),
            d_a2: z(S2 * S2 * C2),
            d_col2: z(S2 * S2 * TAPS2),
            d_p1: z(P1 * P1 * C1),
            d_a1: z(S1 * S1 * C1),
        }
    }

    /// The last forward's logits, `[n, 10]`.
    pub fn logits(&self, n: usize) -> &[f32] {
        &self.logits[..n * CLASSES]
    }

    /// The last forward's data flow: maxpool2 `[n, 256]` (PyTorch's flatten order), and fc1,
    /// fc2, fc3 before their activations.
    pub fn flow(&self, n: usize) -> [&[f32]; 4] {
        [
            &self.flat[..n * FLAT],
            &self.h1[..n * FC1],
            &self.h2[..n * FC2],
            &self.logits[..n * CLASSES],
        ]
    }
}

/// `out[r, :] = bias` for each of `rows` rows, then `out += lhs . w^T` with `w` `[n, k]`
/// row-major (PyTorch's linear and flattened conv weights).
fn affine(out: &mut [f32], rows: usize, lhs: &[f32], k: usize, w: &[f32], bias: &[f32]) {
    let n = bias.len();
    for row in out[..rows * n].chunks_exact_mut(n) {
        row.copy_from_slice(bias);
    }
    matmul((rows, n, k), out, (n, 1), true, lhs, (k, 1), w, (1, k));
}

/// `grad_w [n, k] = d^T . x` with `d` `[rows, n]` and `x` `[rows, k]`; `grad_b` = column sums.
fn affine_grads(
    grad_w: &mut [f32],
    grad_b: &mut [f32],
    rows: usize,
    d: &[f32],
    x: &[f32],
    accumulate: bool,
) {
    let (n, k) = (grad_b.len(), grad_w.len() / grad_b.len());
    matmul(
        (n, k, rows),
        grad_w,
        (k, 1),
        accumulate,
        d,
        (1, n),
        x,
        (k, 1),
    );
    for row in d[..rows * n].chunks_exact(n) {
        grad_b.iter_mut().zip(row).for_each(|(g, v)| *g += v);
    }
}

/// `dx [rows, k] = d [rows, n] . w [n, k]`.
fn affine_input_grad(dx: &mut [f32], rows: usize, d: &[f32], w: &[f32], k: usize) {
    let n = w.len() / k;
    matmul((rows, k, n), dx, (k, 1), false, d, (n, 1), w, (k, 1));
}

fn relu_into(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s.max(0.0));
}

/// The index of the first maximum of four (PyTorch's tie order).
#[inline(always)]
fn first_max(x: &[f32], idx: [usize; 4]) -> usize {
    let mut best = idx[0];
    for i in [idx[1], idx[2], idx[3]] {
        if x[i] > x[best] {
            best = i;
        }
    }
    best
}

/// 2x2 max pooling of conv1's planes `[n, 6, 24, 24]` into NHWC `[n, 12, 12, 6]`, ReLU after;
/// `arg` keeps each maximum's flat index for the backward pass.
fn pool1(a1: &[f32], n: usize, p1: &mut [f32], arg: &mut [u32]) {
    for b in 0..n {
        for c in 0..C1 {
            let plane = (b * C1 + c) * S1 * S1;
            for py in 0..P1 {
                let top = plane + 2 * py * S1;
                for px in 0..P1 {
                    let i = top + 2 * px;
                    let best = first_max(a1, [i, i + 1, i + S1, i + S1 + 1]);
                    let o = ((b * P1 + py) * P1 + px) * C1 + c;
                    p1[o] = a1[best].max(0.0);
                    arg[o] = best as u32;
                }
            }
        }
    }
}

/// 2x2 max pooling of conv2's NHWC `[n, 8, 8, 16]` into `[n, 256]` in PyTorch's flatten order
/// (channel, y, x), ReLU after.
fn pool2(a2: &[f32], n: usize, flat: &mut [f32], arg: &mut [u32]) {
    for b in 0..n {
        for py in 0..P2 {
            for px in 0..P2 {
                let i = ((b * S2 + 2 * py) * S2 + 2 * px) * C2;
                for c in 0..C2 {
                    let j = i + c;
                    let best = first_max(a2, [j, j + C2, j + S2 * C2, j + S2 * C2 + C2]);
                    let o = b * FLAT + c * P2 * P2 + py * P2 + px;
                    flat[o] = a2[best].max(0.0);
                    arg[o] = best as u32;
                }
            }
        }
    }
}

/// Routes pooled gradients back to each window's maximum, where the ReLU let it through.
fn unpool(d_out: &[f32], out: &[f32], arg: &[u32], d_x: &mut [f32]) {
    d_x.fill(0.0);
    for ((&d, &o), &a) in d_out.iter().zip(out).zip(arg) {
        if o > 0.0 {
            d_x[a as usize] += d;
        }
    }
}

/// The second conv's patches from NHWC pooled maps, columns in `(ky, kx, channel)` order, so
/// each kernel row is one contiguous run of 5 x 6 values.
fn im2col2(p1: &[f32], n: usize, col: &mut [f32]) {
    const RUN: usize = K * C1;
    for b in 0..n {
        for oy in 0..S2 {
            for ox in 0..S2 {
                let row = &mut col[((b * S2 + oy) * S2 + ox) * TAPS2..][..TAPS2];
                for ky in 0..K {
                    let src = &p1[((b * P1 + oy + ky) * P1 + ox) * C1..][..RUN];
                    row[ky * RUN..][..RUN].copy_from_slice(src);
                }
            }
        }
    }
}

fn col2im2(col: &[f32], n: usize, d_p1: &mut [f32]) {
    const RUN: usize = K * C1;
    d_p1[..n * P1 * P1 * C1].fill(0.0);
    for b in 0..n {
        for oy in 0..S2 {
            for ox in 0..S2 {
                let row = &col[((b * S2 + oy) * S2 + ox) * TAPS2..][..TAPS2];
                for ky in 0..K {
                    let dst = &mut d_p1[((b * P1 + oy + ky) * P1 + ox) * C1..][..RUN];
                    dst.iter_mut()
                        .zip(&row[ky * RUN..][..RUN])
                        .for_each(|(d, v)| *d += v);
                }
            }
        }
    }
}

/// PyTorch's `(channel, ky, kx)` column order to im2col's `(ky, kx, channel)`.
fn permute_w2(torch: &[f32], ours: &mut [f32]) {
    for o in 0..C2 {
        for c in 0..C1 {
            for t in 0..TAPS1 {
                ours[o * TAPS2 + t * C1 + c] = torch[o * TAPS2 + c * TAPS1 + t];
            }
        }
    }
}

/// Adds a gradient in im2col's column order onto one in PyTorch's.
fn permute_w2_back_adding(ours: &[f32], torch: &mut [f32]) {
    for o in 0..C2 {
        for c in 0..C1 {
            for t in 0..TAPS1 {
                torch[o * TAPS2 + c * TAPS1 + t] += ours[o * TAPS2 + t * C1 + c];
            }
        }
    }
}

/// Views of the flat parameter (or gradient) vector, one per entry of `PARAMS`.
fn split<T>(v: &mut [T]) -> [&mut [T]; 10] {
    let (at, total) = offsets();
    assert_eq!(
        v.len(),
        total,
        "lenet: parameter vector of the wrong length"
    );
    let mut rest = v;
    let mut out: Vec<&mut [T]> = Vec::with_capacity(10);
    for i in 0..10 {
        let len = if i + 1 < 10 {
            at[i + 1] - at[i]
        } else {
            total - at[i]
        };
        let (head, tail) = rest.split_at_mut(len);
        out.push(head);
        rest = tail;
    }
    out.try_into().unwrap_or_else(|_| unreachable!())
}

dispatch!(forward, forward_fma, forward_body, (params: &[f32], images: &[f32], n: usize, s: &mut Scratch));

/// Forward pass of `n` images (`[n, 784]`); results stay in `s`.
#[inline(always)]
fn forward_body<const FMA: bool>(params: &[f32], images: &[f32], n: usize, s: &mut Scratch) {
    let (at, _) = offsets();
    let p = |i: usize| &params[at[i]..at[i] + PARAMS[i].1.iter().product::<usize>()];
    let plane = S1 * S1 * C1;
    for b in 0..n {
        conv1_image::<FMA>(
            &images[b * SIDE * SIDE..][..SIDE * SIDE],
            p(0),
            p(1),
            &mut s.a1[b * plane..][..plane],
        );
    }
    pool1(&s.a1, n, &mut s.p1, &mut s.arg1);
    permute_w2(p(2), &mut s.w2);
    im2col2(&s.p1, n, &mut s.col2);
    affine(&mut s.a2, n * S2 * S2, &s.col2, TAPS2, &s.w2, p(3));
    pool2(&s.a2, n, &mut s.flat, &mut s.arg2);
    affine(&mut s.h1, n, &s.flat, FLAT, p(4), p(5));
    relu_into(&mut s.r1[..n * FC1], &s.h1[..n * FC1]);
    affine(&mut s.h2, n, &s.r1, FC1, p(6), p(7));
    relu_into(&mut s.r2[..n * FC2], &s.h2[..n * FC2]);
    affine(&mut s.logits, n, &s.r2, FC2, p(8), p(9));
}

/// Summed cross-entropy of the last forward against `labels`, and the number it got right;
/// writes d(loss)/d(logits) into the scratch for `backward`, for a loss that is the mean over a
/// batch of `batch` images (`labels` may be part of it).
pub fn loss(labels: &[u8], batch: usize, s: &mut Scratch) -> (f64, usize) {
    let n = batch;
    let (mut total, mut correct) = (0f64, 0);
    for (b, &y) in labels.iter().enumerate() {
        let z = &s.logits[b * CLASSES..][..CLASSES];
        let d = &mut s.d_logits[b * CLASSES..][..CLASSES];
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for (d, &v) in d.iter_mut().zip(z) {
            *d = (v - max).exp();
            sum += *d;
        }
        total += (sum.ln() + max - z[y as usize]) as f64;
        for d in d.iter_mut() {
            *d /= sum * n as f32;
        }
        d[y as usize] -= 1.0 / n as f32;
        correct += usize::from(argmax(z) == y as usize);
    }
    (total, correct)
}

/// The first index of the largest value; NaN never wins.
pub fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best
}

dispatch!(backward, backward_fma, backward_body,
    (params: &[f32], images: &[f32], n: usize, s: &mut Scratch, grads: &mut [f32]));

/// Adds the gradients of the loss set by `loss` onto `grads` (same layout as `params`).
#[inline(always)]
fn backward_body<const FMA: bool>(
    params: &[f32],
    images: &[f32],
    n: usize,
    s: &mut Scratch,
    grads: &mut [f32],
) {
    let (at, _) = offsets();
    let p = |i: usize| &params[at[i]..at[i] + PARAMS[i].1.iter().product::<usize>()];
    let [g_w1, g_b1, g_w2, g_b2, g_w3, g_b3, g_w4, g_b4, g_w5, g_b5] = split(grads);
    // fc3, fc2, fc1
    affine_grads(g_w5, g_b5, n, &s.d_logits, &s.r2, true);
    affine_input_grad(&mut s.d_r2, n, &s.d_logits, p(8), FC2);
    mask_relu(&mut s.d_r2[..n * FC2], &s.h2);
    affine_grads(g_w4, g_b4, n, &s.d_r2, &s.r1, true);
    affine_input_grad(&mut s.d_r1, n, &s.d_r2, p(6), FC1);
    mask_relu(&mut s.d_r1[..n * FC1], &s.h1);
    affine_grads(g_w3, g_b3, n, &s.d_r1, &s.flat, true);
    affine_input_grad(&mut s.d_flat, n, &s.d_r1, p(4), FLAT);
    // pool2 and conv2
    let a2_len = n * S2 * S2 * C2;
    unpool(
        &s.d_flat[..n * FLAT],
        &s.flat[..n * FLAT],
        &s.arg2[..n * FLAT],
        &mut s.d_a2[..a2_len],
    );
    affine_grads(&mut s.g_w2, g_b2, n * S2 * S2, &s.d_a2, &s.col2, false);
    permute_w2_back_adding(&s.g_w2, g_w2);
    affine_input_grad(&mut s.d_col2, n * S2 * S2, &s.d_a2, &s.w2, TAPS2);
    col2im2(&s.d_col2, n, &mut s.d_p1);
    // pool1 and conv1
    let p1_len = n * P1 * P1 * C1;
    let plane = S1 * S1 * C1;
    unpool(
        &s.d_p1[..p1_len],
        &s.p1[..p1_len],
        &s.arg1[..p1_len],
        &mut s.d_a1[..n * plane],
    );
    for b in 0..n {
        let d = &s.d_a1[b * plane..][..plane];
        conv1_weight_grad::<FMA>(&images[b * SIDE * SIDE..][..SIDE * SIDE], d, g_w1);
        for (c, g) in g_b1.iter_mut().enumerate() {
            *g += d[c * S1 * S1..][..S1 * S1].iter().sum::<f32>();
        }
    }
}

fn mask_relu(d: &mut [f32], pre: &[f32]) {
    d.iter_mut().zip(pre).for_each(|(d, &h)| {
        if h <= 0.0 {
            *d = 0.0
        }
    });
}
