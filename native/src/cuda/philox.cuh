// Philox4x32-10, the counter-based generator of `philox.rs`, and the white-noise pixel words
// built on it: shared by the stimulus kernels (noise.cu) and the fused analysis (white_noise.cu),
// so that every kernel draws sample i's pixels from the same counters as the CPU.

#pragma once
#include <stdint.h>

#define WNA_PIXELS 784
#define WNA_BLOCKS_PER_IMAGE (WNA_PIXELS / 4)

__device__ __forceinline__ uint4 philox4x32_10(uint4 ctr, uint2 key) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(M0, ctr.x), lo0 = M0 * ctr.x;
        uint32_t hi1 = __umulhi(M1, ctr.z), lo1 = M1 * ctr.z;
        ctr = make_uint4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
        key.x += W0;
        key.y += W1;
    }
    return ctr;
}

/// The four words behind pixels 4 * block .. 4 * block + 3 of sample `index`.
__device__ __forceinline__ uint4 pixel_words(uint64_t index, uint32_t block, uint32_t seed_lo,
                                             uint32_t seed_hi, uint32_t stream) {
    return philox4x32_10(make_uint4(block, stream, (uint32_t)index, (uint32_t)(index >> 32)),
                         make_uint2(seed_lo, seed_hi));
}

/// Uniform pixels in [0, 1): the top 24 bits of each word, as `Philox::fill_uniform`.
__device__ __forceinline__ float4 uniform_pixels(uint4 w) {
    const float scale = 1.0f / 16777216.0f;
    return make_float4((float)(w.x >> 8) * scale, (float)(w.y >> 8) * scale,
                       (float)(w.z >> 8) * scale, (float)(w.w >> 8) * scale);
}

/// Normal pixels: Box-Muller on uniforms in (0, 1], as `Philox::fill_normal`.
__device__ __forceinline__ float4 normal_pixels(uint4 w, float mean, float std) {
    const float scale = 1.0f / 16777216.0f;
    float u0 = ((float)(w.x >> 8) + 1.0f) * scale, u1 = ((float)(w.y >> 8) + 1.0f) * scale;
    float u2 = ((float)(w.z >> 8) + 1.0f) * scale, u3 = ((float)(w.w >> 8) + 1.0f) * scale;
    const float tau = 6.28318530717958647692f;
    float r0 = sqrtf(-2.0f * logf(u0)), t0 = tau * u1;
    float r1 = sqrtf(-2.0f * logf(u2)), t1 = tau * u3;
    return make_float4(mean + std * (r0 * cosf(t0)), mean + std * (r0 * sinf(t0)),
                       mean + std * (r1 * cosf(t1)), mean + std * (r1 * sinf(t1)));
}
