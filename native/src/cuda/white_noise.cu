// Fused white-noise analysis of a two-block conv net (`smaller` and nets of its shape: conv + BN +
// ReLU + 2x2 max-pool, twice, then linear layers). The noise never exists in global memory:
//
// 1. `wna_wn_features` draws each sample's pixels from Philox into shared memory and runs both
//    conv blocks there, with every weight held in shared memory; only the pooled features (1,600
//    floats for `smaller`) reach global memory, for the linear layers' GEMMs.
// 2. The linear layers run as cuBLAS GEMMs (candle), giving the logits.
// 3. `wna_wn_class_sums` draws the same pixels again and adds them into per-block sums of the
//    classification images (one-hot, softmax-weighted, thresholded), their weights and the plain
//    stimulus sum; `wna_wn_reduce` adds the blocks' sums, in block order, into one f64 total
//    that stays on the device for the whole run.
//
// The arithmetic follows the CPU path: the normalisation is candle's `affine` (a multiply, then
// an add, never fused), batch norm is `fma(x + bias, scale, shift)`, ties in the arg-max go to the
// first class. Only the conv sums' order differs, within float rounding.
//
// The kernels use nothing but `__syncthreads` and shared memory, so the host emulator of the
// tests (native/tests/cuda_emulator) runs this very file on the CPU.

#include "philox.cuh"

#ifndef WNA_DYNAMIC_SHARED // the host emulator brings its own
#define WNA_DYNAMIC_SHARED(name) extern __shared__ float name[]
#endif

/// Output channels of conv2 that one thread computes; conv2's channels are padded to a multiple.
#define WN_CHANNELS 8
/// Images whose weights (softmax, arg-max, threshold) `wna_wn_class_sums` stages at a time.
#define WN_CHUNK 32
/// Columns per sum row: 784 pixels, the weight itself (as a pixel that is always 1), padding.
#define WN_ROW 788

/// The geometry of the two conv blocks; the host (`noise/fused.rs`) fills it from the spec.
struct WnGeometry {
    uint32_t c1, k1, p1;      // conv1: output channels, kernel side, padding (1 input channel)
    uint32_t c2, k2, p2;      // conv2: output channels, kernel side, padding
    uint32_t c2_padded;       // c2 rounded up to WN_CHANNELS
    uint32_t group;           // images one block holds in shared memory at a time
};

__device__ __forceinline__ uint32_t side0(WnGeometry g) { return 28 + 2 * g.p1; }
__device__ __forceinline__ uint32_t pooled1(WnGeometry g) {
    return (side0(g) - g.k1 + 1) / 2;
}
__device__ __forceinline__ uint32_t side1(WnGeometry g) { return pooled1(g) + 2 * g.p2; }
__device__ __forceinline__ uint32_t pooled2(WnGeometry g) {
    return (side1(g) - g.k2 + 1) / 2;
}

/// Floats of the packed parameters: conv1 weights [c1][k1*k1], bias, BN scale, BN shift [c1];
/// conv2 weights [c1][k2*k2][c2_padded] (output channel fastest), bias, scale, shift [c2_padded].
__device__ __forceinline__ uint32_t param_floats(WnGeometry g) {
    return g.c1 * (g.k1 * g.k1 + 3) + g.c2_padded * (g.c1 * g.k2 * g.k2 + 3);
}

/// One sample's pixels 4 * block .. 4 * block + 3, uniform or normal as the run asks.
__device__ __forceinline__ float4 noise_pixels(uint64_t index, uint32_t block, uint32_t seed_lo,
                                               uint32_t seed_hi, uint32_t stream, uint32_t normal,
                                               float mean, float std) {
    uint4 w = pixel_words(index, block, seed_lo, seed_hi, stream);
    return normal ? normal_pixels(w, mean, std) : uniform_pixels(w);
}

/// The pooled conv2 features of samples first .. first + count, `[count][c2][p][p]`.
/// Dynamic shared memory: the parameters, then per image of a group its normalised, zero-bordered
/// input plane and its zero-bordered pooled conv1 planes.
extern "C" __global__ void wna_wn_features(const float *params, float *features, uint64_t first,
                                           uint32_t count, WnGeometry g, uint32_t seed_lo,
                                           uint32_t seed_hi, uint32_t stream, uint32_t normal,
                                           float noise_mean, float noise_std, float in_mul,
                                           float in_add) {
    WNA_DYNAMIC_SHARED(smem);
    const uint32_t tid = threadIdx.x, threads = blockDim.x;
    const uint32_t s0 = side0(g), q1 = pooled1(g), s1 = side1(g), q2 = pooled2(g);
    const uint32_t n_params = param_floats(g);
    const uint32_t plane0 = s0 * s0, plane1 = g.c1 * s1 * s1;
    float *w1 = smem, *b1 = w1 + g.c1 * g.k1 * g.k1, *sc1 = b1 + g.c1, *sh1 = sc1 + g.c1;
    float *w2 = sh1 + g.c1, *b2 = w2 + g.c1 * g.k2 * g.k2 * g.c2_padded;
    float *sc2 = b2 + g.c2_padded, *sh2 = sc2 + g.c2_padded;
    float *inputs = smem + n_params, *maps = inputs + g.group * plane0;

    // Parameters once per block; both kinds of plane zeroed once, so their borders stay the
    // convs' zero padding (only interiors are written below).
    for (uint32_t i = tid; i < n_params; i += threads) smem[i] = params[i];
    for (uint32_t i = tid; i < g.group * (plane0 + plane1); i += threads) inputs[i] = 0.0f;
    __syncthreads();

    const uint32_t per_map = q2 * q2, features_per_image = g.c2 * per_map;
    const uint32_t slots = (g.group * per_map + 31) / 32 * 32; // a warp shares its channels
    for (uint64_t base = (uint64_t)blockIdx.x * g.group; base < count;
         base += (uint64_t)gridDim.x * g.group) {
        const uint32_t here = (uint32_t)min((uint64_t)g.group, count - base);

        // Noise, normalised as candle's affine does it: x * mul, rounded, then + add.
        for (uint32_t i = tid; i < here * WNA_BLOCKS_PER_IMAGE; i += threads) {
            uint32_t img = i / WNA_BLOCKS_PER_IMAGE, block = i % WNA_BLOCKS_PER_IMAGE;
            float4 v = noise_pixels(first + base + img, block, seed_lo, seed_hi, stream, normal,
                                    noise_mean, noise_std);
            uint32_t y = 4 * block / 28, x = 4 * block % 28;
            float *row = inputs + img * plane0 + (y + g.p1) * s0 + x + g.p1;
            row[0] = __fadd_rn(__fmul_rn(v.x, in_mul), in_add);
            row[1] = __fadd_rn(__fmul_rn(v.y, in_mul), in_add);
            row[2] = __fadd_rn(__fmul_rn(v.z, in_mul), in_add);
            row[3] = __fadd_rn(__fmul_rn(v.w, in_mul), in_add);
        }
        __syncthreads();

        // conv1 + BN + ReLU + 2x2 max-pool: one thread per pooled value.
        for (uint32_t i = tid; i < here * g.c1 * q1 * q1; i += threads) {
            uint32_t img = i / (g.c1 * q1 * q1), rest = i % (g.c1 * q1 * q1);
            uint32_t c = rest / (q1 * q1), py = rest % (q1 * q1) / q1, px = rest % q1;
            const float *in = inputs + img * plane0, *w = w1 + c * g.k1 * g.k1;
            float best = 0.0f; // the ReLU's floor
            for (uint32_t dy = 0; dy < 2; dy++) {
                for (uint32_t dx = 0; dx < 2; dx++) {
                    const float *at = in + (2 * py + dy) * s0 + 2 * px + dx;
                    float acc = 0.0f;
                    for (uint32_t ky = 0; ky < g.k1; ky++)
                        for (uint32_t kx = 0; kx < g.k1; kx++)
                            acc = fmaf(at[ky * s0 + kx], w[ky * g.k1 + kx], acc);
                    best = fmaxf(best, fmaf(acc + b1[c], sc1[c], sh1[c]));
                }
            }
            maps[img * plane1 + c * s1 * s1 + (py + g.p2) * s1 + px + g.p2] = best;
        }
        __syncthreads();

        // conv2 + BN + ReLU + 2x2 max-pool: a thread computes one pooled position of one image
        // for WN_CHANNELS channels, 4 x WN_CHANNELS sums in registers. The 32 threads of a warp
        // share their channels, so each weight load is a broadcast.
        for (uint32_t i = tid; i < g.c2_padded / WN_CHANNELS * slots; i += threads) {
            uint32_t cg = i / slots, slot = i % slots;
            if (slot >= here * per_map) continue;
            uint32_t img = slot / per_map, qy = slot % per_map / q2, qx = slot % q2;
            float acc[4][WN_CHANNELS];
#pragma unroll
            for (int j = 0; j < 4; j++)
#pragma unroll
                for (int c = 0; c < WN_CHANNELS; c++) acc[j][c] = 0.0f;
            const float *in = maps + img * plane1 + 2 * qy * s1 + 2 * qx;
            for (uint32_t ci = 0; ci < g.c1; ci++) {
                for (uint32_t ky = 0; ky < g.k2; ky++) {
                    for (uint32_t kx = 0; kx < g.k2; kx++) {
                        const float *at = in + ci * s1 * s1 + ky * s1 + kx;
                        float v[4] = {at[0], at[1], at[s1], at[s1 + 1]};
                        const float *w =
                            w2 + ((ci * g.k2 + ky) * g.k2 + kx) * g.c2_padded + cg * WN_CHANNELS;
#pragma unroll
                        for (int c = 0; c < WN_CHANNELS; c++) {
                            float wc = w[c];
#pragma unroll
                            for (int j = 0; j < 4; j++) acc[j][c] = fmaf(v[j], wc, acc[j][c]);
                        }
                    }
                }
            }
            float *out = features + (base + img) * features_per_image + qy * q2 + qx;
#pragma unroll
            for (int c = 0; c < WN_CHANNELS; c++) {
                uint32_t ch = cg * WN_CHANNELS + c;
                if (ch >= g.c2) continue;
                float best = 0.0f;
#pragma unroll
                for (int j = 0; j < 4; j++)
                    best = fmaxf(best, fmaf(acc[j][c] + b2[ch], sc2[ch], sh2[ch]));
                out[ch * per_map] = best;
            }
        }
        __syncthreads(); // the next group overwrites the planes
    }
}

/// Per-block sums over samples first + start .. first + end, where block b takes `per_block`
/// samples from b * per_block. Rows: the one-hot prediction (classes rows), the softmax
/// (classes), the one-hot prediction above the threshold (classes), and ones (1); columns: the
/// 784 pixels, then the weight itself. `partials` is `[gridDim.x][rows][WN_ROW]`.
/// Dynamic shared memory: the sums, then a chunk's softmax, prediction and threshold flag.
extern "C" __global__ void wna_wn_class_sums(const float *logits, float *partials, uint64_t first,
                                             uint32_t count, uint32_t classes, float threshold,
                                             uint32_t per_block, uint32_t seed_lo,
                                             uint32_t seed_hi, uint32_t stream, uint32_t normal,
                                             float noise_mean, float noise_std) {
    WNA_DYNAMIC_SHARED(smem);
    const uint32_t tid = threadIdx.x, threads = blockDim.x;
    const uint32_t rows = 3 * classes + 1, width = rows * WN_ROW;
    float *sums = smem, *probs = sums + width;
    uint32_t *pred = reinterpret_cast<uint32_t *>(probs + WN_CHUNK * classes);
    uint32_t *sure = pred + WN_CHUNK;
    for (uint32_t i = tid; i < width; i += threads) sums[i] = 0.0f;
    const uint64_t start = (uint64_t)blockIdx.x * per_block;
    const uint64_t end = min((uint64_t)count, start + per_block);
    for (uint64_t chunk = start; chunk < end; chunk += WN_CHUNK) {
        const uint32_t here = (uint32_t)min((uint64_t)WN_CHUNK, end - chunk);
        // Softmax as candle computes it (max-shifted exp over its sum), then the first maximum.
        if (tid < here) {
            const float *l = logits + (chunk + tid) * classes;
            float *p = probs + tid * classes;
            float m = l[0];
            for (uint32_t k = 1; k < classes; k++) m = fmaxf(m, l[k]);
            float total = 0.0f;
            for (uint32_t k = 0; k < classes; k++) {
                p[k] = expf(l[k] - m);
                total += p[k];
            }
            uint32_t best = 0;
            for (uint32_t k = 0; k < classes; k++) {
                p[k] /= total;
                if (p[k] > p[best]) best = k;
            }
            pred[tid] = best;
            sure[tid] = p[best] > threshold;
        }
        __syncthreads();
        // A thread owns four columns of every row: no two threads touch one sum.
        if (tid <= WNA_BLOCKS_PER_IMAGE) {
            for (uint32_t i = 0; i < here; i++) {
                float4 x = tid < WNA_BLOCKS_PER_IMAGE
                               ? noise_pixels(first + chunk + i, tid, seed_lo, seed_hi, stream,
                                              normal, noise_mean, noise_std)
                               : make_float4(1.0f, 0.0f, 0.0f, 0.0f);
                const float *p = probs + i * classes;
                float *col = sums + 4 * tid;
// One 16-byte load and store per row: rows are WN_ROW = 788 floats, a multiple of 4.
#define WN_ADD(row, weight)                                                                        \
    do {                                                                                           \
        float4 *s = reinterpret_cast<float4 *>(col + (row) * WN_ROW);                              \
        float4 v = *s;                                                                             \
        v.x = fmaf(weight, x.x, v.x);                                                              \
        v.y = fmaf(weight, x.y, v.y);                                                              \
        v.z = fmaf(weight, x.z, v.z);                                                              \
        v.w = fmaf(weight, x.w, v.w);                                                              \
        *s = v;                                                                                    \
    } while (0)
                WN_ADD(pred[i], 1.0f);
                for (uint32_t k = 0; k < classes; k++) WN_ADD(classes + k, p[k]);
                if (sure[i]) WN_ADD(2 * classes + pred[i], 1.0f);
                WN_ADD(3 * classes, 1.0f);
#undef WN_ADD
            }
        }
        __syncthreads(); // the next chunk overwrites the staged weights
    }
    for (uint32_t i = tid; i < width; i += threads)
        partials[(uint64_t)blockIdx.x * width + i] = sums[i];
}

/// total[i] += the blocks' partials[b][i], added in block order (the same bits every run).
extern "C" __global__ void wna_wn_reduce(const float *partials, uint32_t blocks, uint32_t width,
                                         double *total) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= width) return;
    double s = 0.0;
    for (uint32_t b = 0; b < blocks; b++) s += (double)partials[(uint64_t)b * width + i];
    total[i] += s;
}
