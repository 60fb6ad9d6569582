// Training batch norm (optionally fused with the ReLU after it) on the GPU: the CUDA twins of
// the CPU op in `kernels/batch_norm.rs`. candle's version is a transpose, six broadcast passes
// and a ReLU forward, and autograd's chain of the same backward; here it is
//
//   forward    `wna_bn_statistics` + `_finish`: per-channel mean and variance, summed in f64;
//              `wna_bn_forward`: y = relu(x * scale + shift), one pass;
//   backward   `wna_bn_grad_sums` + `_finish`: per-channel sums of dz and dz * xhat (dz: the
//              gradient the ReLU lets through), which are also dbeta and dgamma;
//              `wna_bn_grad_input`: dx, one pass.
//
// A reduction runs one block per (channel, chunk of images); each block adds its elements in a
// fixed tree order and the `_finish` kernels add the chunks in chunk order, so the sums do not
// depend on scheduling. The element-wise passes round each operation as the CPU op does (no
// fused multiply-adds), so with the same statistics the forward gives the CPU's bits.

#include <stdint.h>

#define BN_THREADS 256

/// `[images, channels, spatial]` activations, reduced in chunks of `per_chunk` images.
struct BnShape {
    uint32_t images, channels, spatial, per_chunk;
};

/// The block's sums of `a` and `b` over its threads, in a fixed tree order, into `out[0..2]`.
__device__ __forceinline__ void bn_block_sums(double a, double b, double *out) {
    __shared__ double s1[BN_THREADS], s2[BN_THREADS];
    uint32_t t = threadIdx.x;
    s1[t] = a;
    s2[t] = b;
    __syncthreads();
    for (uint32_t width = BN_THREADS / 2; width > 0; width /= 2) {
        if (t < width) {
            s1[t] += s1[t + width];
            s2[t] += s2[t + width];
        }
        __syncthreads();
    }
    if (t == 0) {
        out[0] = s1[0];
        out[1] = s2[0];
    }
}

/// Index of element `e` of channel `blockIdx.x` within chunk `blockIdx.y`.
__device__ __forceinline__ uint64_t bn_element(BnShape s, uint32_t first, uint64_t e) {
    uint64_t image = first + e / s.spatial;
    return (image * s.channels + blockIdx.x) * s.spatial + e % s.spatial;
}

/// The elements of this block's chunk: `(first image, element count)`.
__device__ __forceinline__ uint64_t bn_chunk(BnShape s, uint32_t *first) {
    *first = blockIdx.y * s.per_chunk;
    uint32_t end = *first + s.per_chunk < s.images ? *first + s.per_chunk : s.images;
    return (uint64_t)(end - *first) * s.spatial;
}

/// Channel c's two sums over `chunks` partial sums `[chunks][channels][2]`, in chunk order.
__device__ __forceinline__ void bn_chunk_totals(const double *partials, uint32_t chunks,
                                                uint32_t channels, uint32_t c, double *a,
                                                double *b) {
    *a = 0.0;
    *b = 0.0;
    for (uint32_t z = 0; z < chunks; z++) {
        *a += partials[((uint64_t)z * channels + c) * 2];
        *b += partials[((uint64_t)z * channels + c) * 2 + 1];
    }
}

/// Partial `[chunks][channels][2]` sums of x and x^2.
extern "C" __global__ void wna_bn_statistics(const float *x, BnShape s, double *partials) {
    uint32_t first;
    uint64_t count = bn_chunk(s, &first);
    double a = 0.0, b = 0.0;
    for (uint64_t e = threadIdx.x; e < count; e += BN_THREADS) {
        double v = x[bn_element(s, first, e)];
        a += v;
        b += v * v;
    }
    bn_block_sums(a, b, partials + ((uint64_t)blockIdx.y * s.channels + blockIdx.x) * 2);
}

/// `[mean; var]` per channel (biased variance) from `chunks` partial sums, as f32.
extern "C" __global__ void wna_bn_statistics_finish(const double *partials, uint32_t chunks,
                                                    BnShape s, float *out) {
    uint32_t c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= s.channels) return;
    double a, b;
    bn_chunk_totals(partials, chunks, s.channels, c, &a, &b);
    double count = (double)s.images * s.spatial;
    double mean = a / count, var = b / count - mean * mean;
    out[c] = (float)mean;
    out[s.channels + c] = (float)(var > 0.0 ? var : 0.0);
}

/// `y = x * scale + shift` per channel, ReLU'd if asked; scale = gamma * invstd and shift =
/// beta - mean * scale, formed as the CPU's `inference_affine` forms them.
extern "C" __global__ void wna_bn_forward(const float *x, const float *gamma, const float *beta,
                                          const float *mean, const float *invstd, float *y,
                                          BnShape s, uint32_t relu) {
    uint64_t n = (uint64_t)s.images * s.channels * s.spatial;
    uint64_t step = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        uint32_t c = (uint32_t)((i / s.spatial) % s.channels);
        float scale = __fmul_rn(gamma[c], invstd[c]);
        float shift = __fsub_rn(beta[c], __fmul_rn(mean[c], scale));
        float v = __fadd_rn(__fmul_rn(scale, x[i]), shift);
        y[i] = relu ? fmaxf(v, 0.0f) : v;
    }
}

/// The gradient reaching the affine output: all of it, or with the ReLU fused, where y > 0.
__device__ __forceinline__ float bn_reaching(uint32_t relu, float y, float dy) {
    return !relu || y > 0.0f ? dy : 0.0f;
}

/// Partial `[chunks][channels][2]` sums of dz and dz * xhat.
extern "C" __global__ void wna_bn_grad_sums(const float *x, const float *y, const float *dy,
                                            const float *mean, const float *invstd, BnShape s,
                                            uint32_t relu, double *partials) {
    uint32_t first;
    uint64_t count = bn_chunk(s, &first);
    float m = mean[blockIdx.x], inv = invstd[blockIdx.x];
    double a = 0.0, b = 0.0;
    for (uint64_t e = threadIdx.x; e < count; e += BN_THREADS) {
        uint64_t i = bn_element(s, first, e);
        float d = bn_reaching(relu, y[i], dy[i]);
        a += d;
        b += __fmul_rn(__fmul_rn(d, __fsub_rn(x[i], m)), inv);
    }
    bn_block_sums(a, b, partials + ((uint64_t)blockIdx.y * s.channels + blockIdx.x) * 2);
}

/// `[dgamma; dbeta]` per channel, as f32, from `chunks` partial sums.
extern "C" __global__ void wna_bn_grad_finish(const double *partials, uint32_t chunks, BnShape s,
                                              float *out) {
    uint32_t c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= s.channels) return;
    double a, b;
    bn_chunk_totals(partials, chunks, s.channels, c, &a, &b);
    out[c] = (float)b;
    out[s.channels + c] = (float)a;
}

/// dx = gamma * invstd * dz with fixed statistics; with batch statistics, their gradient too:
/// gamma * invstd * (dz - mean(dz) - xhat * mean(dz * xhat)). `sums` is `[dgamma; dbeta]`.
extern "C" __global__ void wna_bn_grad_input(const float *x, const float *y, const float *dy,
                                             const float *mean, const float *invstd,
                                             const float *gamma, const float *sums, BnShape s,
                                             uint32_t relu, uint32_t batch_statistics,
                                             float *dx) {
    uint64_t n = (uint64_t)s.images * s.channels * s.spatial;
    float count = (float)((uint64_t)s.images * s.spatial);
    uint64_t step = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        uint32_t c = (uint32_t)((i / s.spatial) % s.channels);
        float scale = __fmul_rn(gamma[c], invstd[c]);
        float d = bn_reaching(relu, y[i], dy[i]);
        if (batch_statistics) {
            float mean_dz = sums[s.channels + c] / count, mean_dz_xhat = sums[c] / count;
            float xhat = __fmul_rn(__fsub_rn(x[i], mean[c]), invstd[c]);
            d = __fsub_rn(__fsub_rn(d, mean_dz), __fmul_rn(xhat, mean_dz_xhat));
        }
        dx[i] = __fmul_rn(scale, d);
    }
}
