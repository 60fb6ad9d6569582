// Inference batch norm on the GPU: y = x * scale[c] + shift[c], optionally ReLU'd, in one pass
// over an NCHW (or NC) tensor, instead of candle's three broadcast passes.

#include <stdint.h>

extern "C" __global__ void wna_scale_shift(const float *x, const float *scale, const float *shift,
                                           float *y, uint64_t n, uint32_t channels,
                                           uint32_t spatial, uint32_t relu) {
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    uint64_t step = (uint64_t)gridDim.x * blockDim.x;
    for (; i < n; i += step) {
        uint32_t c = (uint32_t)((i / spatial) % channels);
        float v = fmaf(x[i], scale[c], shift[c]);
        y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}
