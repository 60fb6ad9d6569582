// A host emulator for wna's CUDA kernels: enough of CUDA's C++ dialect to compile a .cu file with
// g++, and a launcher that runs every thread of a block as an OS thread, with `__syncthreads` as
// a barrier and the block's shared memory as one buffer. Blocks run one after another, so
// `static` stands in for `__shared__`.
//
// It runs kernels that use only shared memory and `__syncthreads` (no warp shuffles, no
// atomics): the fused white-noise and convolution kernels keep to that, so the CPU-only CI runs their exact
// source. Dynamic shared memory starts as NaN (a GPU's is uninitialised), so a kernel that reads
// it before writing gives NaN, not a lucky zero.

#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

struct dim3 {
    uint32_t x = 1, y = 1, z = 1;
};
struct uint2 {
    uint32_t x, y;
};
struct uint4 {
    uint32_t x, y, z, w;
};
struct float4 {
    float x, y, z, w;
};
inline uint2 make_uint2(uint32_t x, uint32_t y) { return {x, y}; }
inline uint4 make_uint4(uint32_t x, uint32_t y, uint32_t z, uint32_t w) { return {x, y, z, w}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

inline uint32_t __umulhi(uint32_t a, uint32_t b) { return (uint32_t)(((uint64_t)a * b) >> 32); }
// Built with -ffp-contract=off: a multiply and an add stay two roundings, as these promise.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
using std::fmaf;
using std::fmaxf;
template <class T> inline T min(T a, T b) { return std::min(a, b); }

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

namespace wna_emu {
inline thread_local dim3 thread_idx, block_idx;
inline dim3 block_dim, grid_dim;
inline std::barrier<> *barrier;
inline std::vector<float> shared;
/// One launch at a time: the launch state above is global (tests run on several threads).
inline std::mutex launching;
} // namespace wna_emu

#define threadIdx (wna_emu::thread_idx)
#define blockIdx (wna_emu::block_idx)
#define blockDim (wna_emu::block_dim)
#define gridDim (wna_emu::grid_dim)
#define WNA_DYNAMIC_SHARED(name) float *name = wna_emu::shared.data()

inline void __syncthreads() { wna_emu::barrier->arrive_and_wait(); }

/// Runs `kernel()` as a grid of `grid` blocks (x fastest) of `block` threads with
/// `shared_bytes` of dynamic shared memory. The block's threads are started once and run every
/// block in turn, meeting at the barrier between blocks, where thread 0 refills the shared
/// memory with NaN: starting 256 OS threads per block made grids of a thousand blocks take
/// most of a minute.
template <class Kernel>
void wna_emu_launch(dim3 grid, uint32_t block, size_t shared_bytes, Kernel kernel) {
    std::lock_guard<std::mutex> one_launch(wna_emu::launching);
    wna_emu::grid_dim = grid;
    wna_emu::block_dim = {block, 1, 1};
    std::barrier<> barrier(block);
    wna_emu::barrier = &barrier;
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < block; t++) {
        threads.emplace_back([=, &barrier] {
            wna_emu::thread_idx = {t, 0, 0};
            for (uint32_t bz = 0; bz < grid.z; bz++)
                for (uint32_t by = 0; by < grid.y; by++)
                    for (uint32_t bx = 0; bx < grid.x; bx++) {
                        // Every thread has left the previous block before the memory is reset.
                        barrier.arrive_and_wait();
                        if (t == 0)
                            wna_emu::shared.assign(shared_bytes / sizeof(float) + 1,
                                                   std::numeric_limits<float>::quiet_NaN());
                        barrier.arrive_and_wait();
                        wna_emu::block_idx = {bx, by, bz};
                        kernel();
                    }
        });
    }
    for (auto &t : threads) t.join();
}

/// A 1-D grid of `grid` blocks.
template <class Kernel>
void wna_emu_launch(uint32_t grid, uint32_t block, size_t shared_bytes, Kernel kernel) {
    wna_emu_launch(dim3{grid, 1, 1}, block, shared_bytes, kernel);
}
