// Device helpers shared by the CUDA kernels (nvcc only): launch sizes, bf16 loads and stores
// with fp32 math, and fixed-order warp/block reductions (the same bits on every run).
#pragma once
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

inline constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, at least one.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(std::clamp<int64_t>(blocks, 1, 65535));
}

__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ bf16 to_bf16(float x) { return __float2bfloat16_rn(x); }

// Butterfly sums and maxima over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum (or max) over a block of blockDim.x threads (a multiple of 32, at most 1024); every
// thread gets the result. `shared` holds 32 floats; the block must reach this call together.
template <bool is_max>
__device__ float block_reduce(float v, float* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = is_max ? warp_max(v) : warp_sum(v);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const float identity = is_max ? -INFINITY : 0.0f;
  v = lane < warps ? shared[lane] : identity;
  return is_max ? warp_max(v) : warp_sum(v);
}
__device__ __forceinline__ float block_sum(float v, float* shared) {
  return block_reduce<false>(v, shared);
}
__device__ __forceinline__ float block_max(float v, float* shared) {
  return block_reduce<true>(v, shared);
}

}  // namespace pgolf::cuda
