// wna's CUDA kernels (src/cuda/*.cu) built for the host emulator, with one C launcher per kernel
// for the Rust test (tests/cuda_emulated.rs) to call through dlopen.

#include "emulator.h"
#include "../../src/cuda/batch_norm.cu"
#include "../../src/cuda/conv.cu"
#include "../../src/cuda/layers.cu"
#include "../../src/cuda/noise.cu"
#include "../../src/cuda/pool.cu"
#include "../../src/cuda/white_noise.cu"

extern "C" void emu_noise_uniform(uint32_t grid, uint32_t block, float *out, uint64_t first,
                                  uint32_t seed_lo, uint32_t seed_hi, uint32_t stream,
                                  uint64_t n_blocks) {
    wna_emu_launch(grid, block, 0, [&] {
        wna_noise_uniform(out, first, seed_lo, seed_hi, stream, n_blocks);
    });
}

extern "C" void emu_noise_normal(uint32_t grid, uint32_t block, float *out, uint64_t first,
                                 uint32_t seed_lo, uint32_t seed_hi, uint32_t stream,
                                 uint64_t n_blocks, float mean, float std) {
    wna_emu_launch(grid, block, 0, [&] {
        wna_noise_normal(out, first, seed_lo, seed_hi, stream, n_blocks, mean, std);
    });
}

extern "C" void emu_scale_shift(uint32_t grid, uint32_t block, const float *x, const float *scale,
                                const float *shift, float *y, uint64_t n, uint32_t channels,
                                uint32_t spatial, uint32_t relu) {
    wna_emu_launch(grid, block, 0, [&] {
        wna_scale_shift(x, scale, shift, y, n, channels, spatial, relu);
    });
}

extern "C" void emu_wn_features(uint32_t grid, uint32_t block, uint64_t shared_bytes,
                                const float *params, float *features, uint64_t first,
                                uint32_t count, const WnGeometry *g, uint32_t seed_lo,
                                uint32_t seed_hi, uint32_t stream, uint32_t normal,
                                float noise_mean, float noise_std, float in_mul, float in_add) {
    wna_emu_launch(grid, block, shared_bytes, [&] {
        wna_wn_features(params, features, first, count, *g, seed_lo, seed_hi, stream, normal,
                        noise_mean, noise_std, in_mul, in_add);
    });
}

extern "C" void emu_wn_class_sums(uint32_t grid, uint32_t block, uint64_t shared_bytes,
                                  const float *logits, float *partials, uint64_t first,
                                  uint32_t count, uint32_t classes, float threshold,
                                  uint32_t per_block, uint32_t seed_lo, uint32_t seed_hi,
                                  uint32_t stream, uint32_t normal, float noise_mean,
                                  float noise_std) {
    wna_emu_launch(grid, block, shared_bytes, [&] {
        wna_wn_class_sums(logits, partials, first, count, classes, threshold, per_block, seed_lo,
                          seed_hi, stream, normal, noise_mean, noise_std);
    });
}

extern "C" void emu_wn_reduce(uint32_t grid, uint32_t block, const float *partials,
                              uint32_t blocks, uint32_t width, double *total) {
    wna_emu_launch(grid, block, 0, [&] { wna_wn_reduce(partials, blocks, width, total); });
}

extern "C" void emu_conv_forward(uint32_t gx, uint32_t gy, uint32_t gz, uint32_t block,
                                 const float *x, const float *w, const float *bias, float *y,
                                 const ConvShape *s) {
    wna_emu_launch(dim3{gx, gy, gz}, block, 0, [&] { wna_conv_forward(x, w, bias, y, *s); });
}

extern "C" void emu_conv_grad_input(uint32_t gx, uint32_t gy, uint32_t gz, uint32_t block,
                                    const float *dy, const float *w, float *dx,
                                    const ConvShape *s) {
    wna_emu_launch(dim3{gx, gy, gz}, block, 0, [&] { wna_conv_grad_input(dy, w, dx, *s); });
}

extern "C" void emu_conv_grad_weight(uint32_t gx, uint32_t gy, uint32_t gz, uint32_t block,
                                     const float *x, const float *dy, float *partials,
                                     const ConvShape *s) {
    wna_emu_launch(dim3{gx, gy, gz}, block, 0,
                   [&] { wna_conv_grad_weight(x, dy, partials, *s); });
}

extern "C" void emu_conv_grad_weight_reduce(uint32_t grid, uint32_t block, const float *partials,
                                            uint32_t chunks, const ConvShape *s, float *out) {
    wna_emu_launch(grid, block, 0,
                   [&] { wna_conv_grad_weight_reduce(partials, chunks, *s, out); });
}

extern "C" void emu_bn_statistics(uint32_t gx, uint32_t gy, uint32_t block, const float *x,
                                  const BnShape *s, double *partials) {
    wna_emu_launch(dim3{gx, gy, 1}, block, 0, [&] { wna_bn_statistics(x, *s, partials); });
}

extern "C" void emu_bn_statistics_finish(uint32_t grid, uint32_t block, const double *partials,
                                         uint32_t chunks, const BnShape *s, float *out) {
    wna_emu_launch(grid, block, 0, [&] { wna_bn_statistics_finish(partials, chunks, *s, out); });
}

extern "C" void emu_bn_forward(uint32_t grid, uint32_t block, const float *x, const float *gamma,
                               const float *beta, const float *mean, const float *invstd,
                               float *y, const BnShape *s, uint32_t relu) {
    wna_emu_launch(grid, block, 0,
                   [&] { wna_bn_forward(x, gamma, beta, mean, invstd, y, *s, relu); });
}

extern "C" void emu_bn_grad_sums(uint32_t gx, uint32_t gy, uint32_t block, const float *x,
                                 const float *y, const float *dy, const float *mean,
                                 const float *invstd, const BnShape *s, uint32_t relu,
                                 double *partials) {
    wna_emu_launch(dim3{gx, gy, 1}, block, 0, [&] {
        wna_bn_grad_sums(x, y, dy, mean, invstd, *s, relu, partials);
    });
}

extern "C" void emu_bn_grad_finish(uint32_t grid, uint32_t block, const double *partials,
                                   uint32_t chunks, const BnShape *s, float *out) {
    wna_emu_launch(grid, block, 0, [&] { wna_bn_grad_finish(partials, chunks, *s, out); });
}

extern "C" void emu_bn_grad_input(uint32_t grid, uint32_t block, const float *x, const float *y,
                                  const float *dy, const float *mean, const float *invstd,
                                  const float *gamma, const float *sums, const BnShape *s,
                                  uint32_t relu, uint32_t batch_statistics, float *dx) {
    wna_emu_launch(grid, block, 0, [&] {
        wna_bn_grad_input(x, y, dy, mean, invstd, gamma, sums, *s, relu, batch_statistics, dx);
    });
}

extern "C" void emu_max_pool2(uint32_t grid, uint32_t block, const float *x, float *y,
                              const PoolShape *s) {
    wna_emu_launch(grid, block, 0, [&] { wna_max_pool2(x, y, *s); });
}

extern "C" void emu_max_pool2_grad(uint32_t grid, uint32_t block, const float *x,
                                   const float *dy, float *dx, const PoolShape *s) {
    wna_emu_launch(grid, block, 0, [&] { wna_max_pool2_grad(x, dy, dx, *s); });
}
