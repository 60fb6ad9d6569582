// White-noise stimuli on the GPU: the same Philox4x32-10 stream as `philox.rs`, so a sample's
// pixels are bit-identical on the CPU and the GPU (uniform) or within float rounding (gaussian).
// One thread makes one block of four pixels; an image is 196 blocks.

#include <stdint.h>

#define PIXELS 784
#define BLOCKS_PER_IMAGE (PIXELS / 4)

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

__device__ __forceinline__ uint4 noise_words(uint64_t first, uint32_t seed_lo, uint32_t seed_hi,
                                             uint32_t stream, uint64_t t) {
    uint64_t index = first + t / BLOCKS_PER_IMAGE;
    uint32_t block = (uint32_t)(t % BLOCKS_PER_IMAGE);
    return philox4x32_10(make_uint4(block, stream, (uint32_t)index, (uint32_t)(index >> 32)),
                         make_uint2(seed_lo, seed_hi));
}

extern "C" __global__ void wna_noise_uniform(float *out, uint64_t first, uint32_t seed_lo,
                                             uint32_t seed_hi, uint32_t stream, uint64_t n_blocks) {
    uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_blocks) return;
    uint4 w = noise_words(first, seed_lo, seed_hi, stream, t);
    const float scale = 1.0f / 16777216.0f;
    float4 v = make_float4((float)(w.x >> 8) * scale, (float)(w.y >> 8) * scale,
                           (float)(w.z >> 8) * scale, (float)(w.w >> 8) * scale);
    reinterpret_cast<float4 *>(out)[t] = v;
}

extern "C" __global__ void wna_noise_normal(float *out, uint64_t first, uint32_t seed_lo,
                                            uint32_t seed_hi, uint32_t stream, uint64_t n_blocks,
                                            float mean, float std) {
    uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_blocks) return;
    uint4 w = noise_words(first, seed_lo, seed_hi, stream, t);
    const float scale = 1.0f / 16777216.0f;
    // Box-Muller on uniforms in (0, 1], as the CPU does.
    float u0 = ((float)(w.x >> 8) + 1.0f) * scale, u1 = ((float)(w.y >> 8) + 1.0f) * scale;
    float u2 = ((float)(w.z >> 8) + 1.0f) * scale, u3 = ((float)(w.w >> 8) + 1.0f) * scale;
    const float tau = 6.28318530717958647692f;
    float r0 = sqrtf(-2.0f * logf(u0)), t0 = tau * u1;
    float r1 = sqrtf(-2.0f * logf(u2)), t1 = tau * u3;
    float4 v = make_float4(mean + std * (r0 * cosf(t0)), mean + std * (r0 * sinf(t0)),
                           mean + std * (r1 * cosf(t1)), mean + std * (r1 * sinf(t1)));
    reinterpret_cast<float4 *>(out)[t] = v;
}
