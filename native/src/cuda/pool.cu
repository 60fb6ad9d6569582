// 2x2 max-pooling with stride 2 and its backward on the GPU: the CUDA twins of the CPU op in
// `kernels/max_pool.rs`. candle's forward is right, but its backward scales the gradient by 1/4,
// and the portable fix (`backward_fixes.rs`) routes it with a dozen mask and concatenation passes;
// here each is one pass. Odd trailing rows and columns are dropped (floor), and ties go to the
// first maximum in row-major window order, as on the CPU and in PyTorch.

#include <stdint.h>

/// `planes` (images x channels) planes of `height` x `width`.
struct PoolShape {
    uint32_t planes, height, width;
};

extern "C" __global__ void wna_max_pool2(const float *x, float *y, PoolShape s) {
    uint32_t oh = s.height / 2, ow = s.width / 2;
    uint64_t n = (uint64_t)s.planes * oh * ow;
    uint64_t step = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        uint64_t plane = i / ((uint64_t)oh * ow);
        uint32_t o = (uint32_t)(i % ((uint64_t)oh * ow)), oy = o / ow, ox = o % ow;
        const float *r0 = x + (plane * s.height + 2 * oy) * s.width + 2 * ox;
        const float *r1 = r0 + s.width;
        // The CPU's order of comparisons, so NaNs resolve the same way.
        y[i] = fmaxf(fmaxf(r0[0], r0[1]), fmaxf(r1[0], r1[1]));
    }
}

/// dx: each input pixel gets its window's gradient if it is the window's first maximum, else 0.
extern "C" __global__ void wna_max_pool2_grad(const float *x, const float *dy, float *dx,
                                              PoolShape s) {
    uint32_t oh = s.height / 2, ow = s.width / 2;
    uint64_t n = (uint64_t)s.planes * s.height * s.width;
    uint64_t step = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        uint64_t plane = i / ((uint64_t)s.height * s.width);
        uint32_t p = (uint32_t)(i % ((uint64_t)s.height * s.width));
        uint32_t iy = p / s.width, ix = p % s.width, oy = iy / 2, ox = ix / 2;
        float g = 0.0f;
        if (oy < oh && ox < ow) {
            uint64_t corner = (plane * s.height + 2 * oy) * s.width + 2 * ox;
            uint64_t window[4] = {corner, corner + 1, corner + s.width, corner + s.width + 1};
            uint64_t best = window[0];
            for (int k = 1; k < 4; k++)
                if (x[window[k]] > x[best]) best = window[k];
            if (best == i) g = dy[(plane * oh + oy) * ow + ox];
        }
        dx[i] = g;
    }
}
