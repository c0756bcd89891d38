// Device helpers shared by the CUDA kernels (nvcc only): launch sizes, a grid-stride for_each,
// bf16 loads and stores with fp32 math, the stable sigmoid, and fixed-order warp/block
// reductions (the same bits on every run).
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

// f(i) for every i in [0, n), a grid-stride loop on ctx's stream; f is a functor with a
// __device__ operator()(int64_t) (no extended lambdas needed). `name` labels launch errors.
template <typename F>
__global__ void for_each_kernel(int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    f(i);
}
template <typename F>
void for_each(Context& ctx, int64_t n, F f, const char* name) {
  if (n == 0) return;
  for_each_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(n, f);
  check_launch(name);
}

__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ bf16 to_bf16(float x) { return __float2bfloat16_rn(x); }

// cpu::stable_sigmoid's formula in fp32: 1/(1+e^-x) for x >= 0, else e^x/(1+e^x).
__device__ __forceinline__ float stable_sigmoid(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

// Butterfly sums (float or double) and maxima over the 32 lanes of a warp; every lane gets
// the result.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

template <bool is_max, typename T>
__device__ __forceinline__ T warp_reduce(T v) {
  if constexpr (is_max)
    return warp_max(v);
  else
    return warp_sum(v);
}

// Sum (float or double) or max (float) over a block of blockDim.x threads (a multiple of
// 32, at most 1024); every thread gets the result. `shared` holds 32 T; the block must reach
// this call together.
template <bool is_max, typename T>
__device__ T block_reduce(T v, T* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_reduce<is_max>(v);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const T identity = is_max ? T(-INFINITY) : T(0);
  v = lane < warps ? shared[lane] : identity;
  return warp_reduce<is_max>(v);
}
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* shared) {
  return block_reduce<false>(v, shared);
}
__device__ __forceinline__ float block_max(float v, float* shared) {
  return block_reduce<true>(v, shared);
}

}  // namespace pgolf::cuda
