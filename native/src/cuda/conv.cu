// 2-D convolution and both its gradients as implicit GEMMs: no im2col matrix is ever written.
// Each kernel multiplies a 64x64 output tile per block, 16 reduction indices at a time, and
// gathers the operands' tiles straight from the NCHW tensors into shared memory (zero where the
// window leaves the image):
//
//   forward       y[n, co, oy, ox]  = sum over (ci, ky, kx)  w[co, ci, ky, kx] x[n, ci, iy, ix]
//                 M = c_out, N = images x output positions, K = taps; bias added at the end.
//   input grad    dx[n, ci, iy, ix] = sum over (co, ky, kx)  w[co, ci, ky, kx] dy[n, co, oy, ox]
//                 M = c_in, N = images x input positions, K = c_out x kernel taps; only the
//                 (ky, kx) whose output position (iy + p - ky) / s is whole and inside count.
//   weight grad   dw[co, ci, ky, kx] = sum over (n, oy, ox)  dy[n, co, oy, ox] x[n, ci, iy, ix]
//                 M = c_out, N = taps + 1 (the last column is all ones: the bias gradient),
//                 K = images x output positions, split into chunks across blocks (grid z);
//                 `wna_conv_grad_weight_reduce` adds the chunks' partial sums in chunk order, so
//                 the result does not depend on how the blocks were scheduled.
//
// This replaces candle's im2col + GEMM + copy forward and its `conv_transpose2d` input gradient,
// and the weight gradient candle computes wrong (`backward_fixes.rs`). The CPU twins are the ops in
// `kernels/conv2d.rs`; the host emulator of the tests runs this file against them.
//
// A thread owns a 4x4 grid of outputs, rows ty + 16 i and columns tx + 16 j, so that a warp's
// shared-memory reads of B are 16 consecutive words and its reads of A two broadcasts. The next
// tile's operands are fetched into registers while the current one is multiplied, and shared
// memory holds two tiles, so one barrier per step suffices.

#include <stdint.h>

/// The shapes of one convolution; the host (`kernels/conv2d/gpu.rs`) fills it.
struct ConvShape {
    uint32_t batch, c_in, height, width;
    uint32_t c_out, kernel_h, kernel_w, stride, padding;
    uint32_t out_h, out_w;
    uint32_t k_chunk; // weight gradient: reduction indices per block (a multiple of CONV_TK)
};

#define CONV_TM 64
#define CONV_TN 64
#define CONV_TK 16
#define CONV_THREADS 256
/// Outputs per thread along each side of the tile.
#define CONV_R 4
/// Elements of each operand tile one thread fetches per step.
#define CONV_LOADS (CONV_TM * CONV_TK / CONV_THREADS)

/// Two steps' operand tiles, k-major; rows padded by one word so that stores of k-fastest
/// fetches spread over the banks.
struct ConvTiles {
    float a[2][CONV_TK][CONV_TM + 1];
    float b[2][CONV_TK][CONV_TN + 1];
};

/// Which element of a tile fetch `r` of this thread is: k-fastest (16 threads along k, the
/// layout of every A operand and of the weight gradient's B), or row-fastest (64 threads along
/// the tile's rows, for B operands whose rows are consecutive pixels).
__device__ __forceinline__ uint32_t kf_k() { return threadIdx.x % CONV_TK; }
__device__ __forceinline__ uint32_t kf_row(uint32_t r) {
    return threadIdx.x / CONV_TK + (CONV_THREADS / CONV_TK) * r;
}
__device__ __forceinline__ uint32_t rf_k(uint32_t r) {
    return threadIdx.x / CONV_TN + (CONV_THREADS / CONV_TN) * r;
}
__device__ __forceinline__ uint32_t rf_row() { return threadIdx.x % CONV_TN; }

/// acc += A[tile rows, k_begin..k_end) . B[k_begin..k_end), tile columns). `fetch(k0, a, b)`
/// loads this thread's CONV_LOADS elements of each operand's tile at k0 into registers (zero
/// outside the matrices); `b_k_fastest` says which layout B's fetches have.
template <bool b_k_fastest, class Fetch>
__device__ __forceinline__ void conv_mainloop(ConvTiles &t, uint32_t k_begin, uint32_t k_end,
                                              Fetch fetch, float acc[CONV_R][CONV_R]) {
    uint32_t tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float ra[CONV_LOADS], rb[CONV_LOADS];
    fetch(k_begin, ra, rb);
    uint32_t buf = 0;
    for (uint32_t k0 = k_begin; k0 < k_end; k0 += CONV_TK) {
#pragma unroll
        for (uint32_t r = 0; r < CONV_LOADS; r++) {
            t.a[buf][kf_k()][kf_row(r)] = ra[r];
            if (b_k_fastest) {
                t.b[buf][kf_k()][kf_row(r)] = rb[r];
            } else {
                t.b[buf][rf_k(r)][rf_row()] = rb[r];
            }
        }
        __syncthreads();
        if (k0 + CONV_TK < k_end) fetch(k0 + CONV_TK, ra, rb);
#pragma unroll
        for (uint32_t k = 0; k < CONV_TK; k++) {
            float av[CONV_R], bv[CONV_R];
#pragma unroll
            for (uint32_t i = 0; i < CONV_R; i++) {
                av[i] = t.a[buf][k][ty + 16 * i];
                bv[i] = t.b[buf][k][tx + 16 * i];
            }
#pragma unroll
            for (uint32_t i = 0; i < CONV_R; i++)
#pragma unroll
                for (uint32_t j = 0; j < CONV_R; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        buf ^= 1;
    }
}

/// `x[n, c, y, x]` of an NCHW tensor, or 0 where (y, x) lies outside the plane.
__device__ __forceinline__ float pixel_or_zero(const float *x, uint32_t height, uint32_t width,
                                               uint64_t plane, int32_t y, int32_t xx) {
    if (y < 0 || xx < 0 || y >= (int32_t)height || xx >= (int32_t)width) return 0.0f;
    return x[plane * height * width + (uint32_t)y * width + (uint32_t)xx];
}

extern "C" __global__ void wna_conv_forward(const float *x, const float *w, const float *bias,
                                            float *y, ConvShape s) {
    __shared__ ConvTiles tiles;
    uint32_t khw = s.kernel_h * s.kernel_w, taps = s.c_in * khw;
    uint32_t positions = s.out_h * s.out_w;
    uint64_t n_total = (uint64_t)s.batch * positions;
    uint32_t m0 = blockIdx.y * CONV_TM;
    uint64_t n0 = (uint64_t)blockIdx.x * CONV_TN;
    // This thread's B column is fixed: its image and window origin.
    uint64_t n = n0 + rf_row();
    bool n_ok = n < n_total;
    uint32_t image = n_ok ? (uint32_t)(n / positions) : 0, pos = n_ok ? (uint32_t)(n % positions) : 0;
    int32_t y0 = (int32_t)((pos / s.out_w) * s.stride) - (int32_t)s.padding;
    int32_t x0 = (int32_t)((pos % s.out_w) * s.stride) - (int32_t)s.padding;
    auto fetch = [&](uint32_t k0, float *ra, float *rb) {
        uint32_t ka = k0 + kf_k();
#pragma unroll
        for (uint32_t r = 0; r < CONV_LOADS; r++) {
            uint32_t m = m0 + kf_row(r);
            ra[r] = m < s.c_out && ka < taps ? w[(uint64_t)m * taps + ka] : 0.0f;
            uint32_t kb = k0 + rf_k(r);
            float v = 0.0f;
            if (n_ok && kb < taps) {
                uint32_t ci = kb / khw, tap = kb % khw;
                v = pixel_or_zero(x, s.height, s.width, (uint64_t)image * s.c_in + ci,
                                  y0 + (int32_t)(tap / s.kernel_w),
                                  x0 + (int32_t)(tap % s.kernel_w));
            }
            rb[r] = v;
        }
    };
    float acc[CONV_R][CONV_R] = {};
    conv_mainloop<false>(tiles, 0, taps, fetch, acc);
    uint32_t tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (uint32_t j = 0; j < CONV_R; j++) {
        uint64_t col = n0 + tx + 16 * j;
        if (col >= n_total) continue;
        uint32_t img = (uint32_t)(col / positions), p = (uint32_t)(col % positions);
#pragma unroll
        for (uint32_t i = 0; i < CONV_R; i++) {
            uint32_t m = m0 + ty + 16 * i;
            if (m < s.c_out) y[((uint64_t)img * s.c_out + m) * positions + p] = acc[i][j] + bias[m];
        }
    }
}

extern "C" __global__ void wna_conv_grad_input(const float *dy, const float *w, float *dx,
                                               ConvShape s) {
    __shared__ ConvTiles tiles;
    uint32_t khw = s.kernel_h * s.kernel_w, k_total = s.c_out * khw;
    uint32_t plane = s.height * s.width, out_plane = s.out_h * s.out_w;
    uint64_t n_total = (uint64_t)s.batch * plane;
    uint32_t m0 = blockIdx.y * CONV_TM;
    uint64_t n0 = (uint64_t)blockIdx.x * CONV_TN;
    // This thread's B column: an input pixel, shifted by the padding.
    uint64_t n = n0 + rf_row();
    bool n_ok = n < n_total;
    uint32_t image = n_ok ? (uint32_t)(n / plane) : 0, pos = n_ok ? (uint32_t)(n % plane) : 0;
    int32_t yp = (int32_t)(pos / s.width + s.padding), xp = (int32_t)(pos % s.width + s.padding);
    auto fetch = [&](uint32_t k0, float *ra, float *rb) {
        uint32_t ka = k0 + kf_k();
        uint32_t co_a = ka / khw, tap_a = ka % khw;
#pragma unroll
        for (uint32_t r = 0; r < CONV_LOADS; r++) {
            uint32_t m = m0 + kf_row(r);
            ra[r] = m < s.c_in && ka < k_total
                        ? w[((uint64_t)co_a * s.c_in + m) * khw + tap_a]
                        : 0.0f;
            uint32_t kb = k0 + rf_k(r);
            float v = 0.0f;
            if (n_ok && kb < k_total) {
                uint32_t co = kb / khw, tap = kb % khw;
                // The output position whose window puts kernel tap (ky, kx) on this pixel.
                int32_t sy = yp - (int32_t)(tap / s.kernel_w);
                int32_t sx = xp - (int32_t)(tap % s.kernel_w);
                if (sy >= 0 && sx >= 0 && sy % (int32_t)s.stride == 0 &&
                    sx % (int32_t)s.stride == 0) {
                    uint32_t oy = (uint32_t)sy / s.stride, ox = (uint32_t)sx / s.stride;
                    if (oy < s.out_h && ox < s.out_w)
                        v = dy[((uint64_t)image * s.c_out + co) * out_plane + oy * s.out_w + ox];
                }
            }
            rb[r] = v;
        }
    };
    float acc[CONV_R][CONV_R] = {};
    conv_mainloop<false>(tiles, 0, k_total, fetch, acc);
    uint32_t tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (uint32_t j = 0; j < CONV_R; j++) {
        uint64_t col = n0 + tx + 16 * j;
        if (col >= n_total) continue;
        uint32_t img = (uint32_t)(col / plane), p = (uint32_t)(col % plane);
#pragma unroll
        for (uint32_t i = 0; i < CONV_R; i++) {
            uint32_t m = m0 + ty + 16 * i;
            if (m < s.c_in) dx[((uint64_t)img * s.c_in + m) * plane + p] = acc[i][j];
        }
    }
}

/// Partial sums `[chunks][c_out][taps + 1]` of the weight and bias gradients: block z adds
/// reduction indices z * k_chunk .. (z + 1) * k_chunk.
extern "C" __global__ void wna_conv_grad_weight(const float *x, const float *dy, float *partials,
                                                ConvShape s) {
    __shared__ ConvTiles tiles;
    uint32_t khw = s.kernel_h * s.kernel_w, taps = s.c_in * khw, n_total = taps + 1;
    uint32_t positions = s.out_h * s.out_w;
    uint64_t k_total = (uint64_t)s.batch * positions;
    uint32_t m0 = blockIdx.y * CONV_TM, n0 = blockIdx.x * CONV_TN;
    uint64_t k_begin = (uint64_t)blockIdx.z * s.k_chunk;
    uint64_t k_end = k_begin + s.k_chunk < k_total ? k_begin + s.k_chunk : k_total;
    // This thread's B columns are fixed: their channel and kernel offsets.
    uint32_t ci[CONV_LOADS], ky[CONV_LOADS], kx[CONV_LOADS];
#pragma unroll
    for (uint32_t r = 0; r < CONV_LOADS; r++) {
        uint32_t col = n0 + kf_row(r), tap = col % khw;
        ci[r] = col / khw;
        ky[r] = tap / s.kernel_w;
        kx[r] = tap % s.kernel_w;
    }
    // The loop counts k from 0 in 32 bits; fetch adds this block's start.
    auto fetch = [&](uint32_t k0, float *ra, float *rb) {
        uint64_t k = k_begin + k0 + kf_k();
        bool k_ok = k < k_end;
        uint32_t image = k_ok ? (uint32_t)(k / positions) : 0;
        uint32_t pos = k_ok ? (uint32_t)(k % positions) : 0;
        int32_t y0 = (int32_t)((pos / s.out_w) * s.stride) - (int32_t)s.padding;
        int32_t x0 = (int32_t)((pos % s.out_w) * s.stride) - (int32_t)s.padding;
#pragma unroll
        for (uint32_t r = 0; r < CONV_LOADS; r++) {
            uint32_t m = m0 + kf_row(r), col = n0 + kf_row(r);
            ra[r] = k_ok && m < s.c_out ? dy[((uint64_t)image * s.c_out + m) * positions + pos]
                                        : 0.0f;
            float v = 0.0f;
            if (k_ok && col < taps) {
                v = pixel_or_zero(x, s.height, s.width, (uint64_t)image * s.c_in + ci[r],
                                  y0 + (int32_t)ky[r], x0 + (int32_t)kx[r]);
            } else if (k_ok && col == taps) {
                v = 1.0f;
            }
            rb[r] = v;
        }
    };
    float acc[CONV_R][CONV_R] = {};
    conv_mainloop<true>(tiles, 0, (uint32_t)(k_end - k_begin), fetch, acc);
    uint32_t tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float *out = partials + (uint64_t)blockIdx.z * s.c_out * n_total;
#pragma unroll
    for (uint32_t i = 0; i < CONV_R; i++) {
        uint32_t m = m0 + ty + 16 * i;
        if (m >= s.c_out) continue;
#pragma unroll
        for (uint32_t j = 0; j < CONV_R; j++) {
            uint32_t col = n0 + tx + 16 * j;
            if (col < n_total) out[(uint64_t)m * n_total + col] = acc[i][j];
        }
    }
}

/// The weight gradient `[c_out][taps]` followed by the bias gradient `[c_out]` (the layout of
/// the CPU op): each the sum of `chunks` partials, in chunk order.
extern "C" __global__ void wna_conv_grad_weight_reduce(const float *partials, uint32_t chunks,
                                                       ConvShape s, float *out) {
    uint32_t taps = s.c_in * s.kernel_h * s.kernel_w, n_total = taps + 1;
    uint32_t len = s.c_out * n_total;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < len;
         i += gridDim.x * blockDim.x) {
        float sum = 0.0f;
        for (uint32_t z = 0; z < chunks; z++) sum += partials[(uint64_t)z * len + i];
        uint32_t m = i / n_total, col = i % n_total;
        out[col < taps ? m * taps + col : s.c_out * taps + m] = sum;
    }
}
