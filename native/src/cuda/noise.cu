// White-noise stimuli on the GPU: the same Philox4x32-10 stream as `philox.rs`, so a sample's
// pixels are bit-identical on the CPU and the GPU (uniform) or within float rounding (gaussian).
// One thread makes one block of four pixels; an image is 196 blocks.

#include "philox.cuh"

__device__ __forceinline__ uint4 noise_words(uint64_t first, uint32_t seed_lo, uint32_t seed_hi,
                                             uint32_t stream, uint64_t t) {
    return pixel_words(first + t / WNA_BLOCKS_PER_IMAGE, (uint32_t)(t % WNA_BLOCKS_PER_IMAGE),
                       seed_lo, seed_hi, stream);
}

extern "C" __global__ void wna_noise_uniform(float *out, uint64_t first, uint32_t seed_lo,
                                             uint32_t seed_hi, uint32_t stream, uint64_t n_blocks) {
    uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_blocks) return;
    reinterpret_cast<float4 *>(out)[t] =
        uniform_pixels(noise_words(first, seed_lo, seed_hi, stream, t));
}

extern "C" __global__ void wna_noise_normal(float *out, uint64_t first, uint32_t seed_lo,
                                            uint32_t seed_hi, uint32_t stream, uint64_t n_blocks,
                                            float mean, float std) {
    uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_blocks) return;
    reinterpret_cast<float4 *>(out)[t] =
        normal_pixels(noise_words(first, seed_lo, seed_hi, stream, t), mean, std);
}
