// Late-QAT int6 fake quantisation on the GPU (SPEC §3; see fake_quant.h). The row maximum is
// exact in any order; division and multiplication are IEEE (nvcc's default -prec-div=true);
// rintf rounds half to even as std::nearbyint does in the default rounding mode.
#include "kernels/cuda/fake_quant.h"

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

// Each thread reads and writes the same elements, and all reads of the row precede the
// block_max barrier, so out may alias w.
__global__ void fake_quant_int6_rows_kernel(const float* w, float* out, int64_t cols) {
  __shared__ float shared[32];
  const float* wr = w + int64_t(blockIdx.x) * cols;
  float* o = out + int64_t(blockIdx.x) * cols;
  float amax = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) amax = fmaxf(amax, fabsf(wr[c]));
  amax = block_max(amax, shared);
  const float scale = fmaxf(amax / 31.0f, 1.0f / 31.0f);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    o[c] = fminf(fmaxf(rintf(wr[c] / scale), -32.0f), 31.0f) * scale;
}

}  // namespace

void fake_quant_int6_rows(Context& ctx, const float* w, float* out, int64_t rows, int64_t cols) {
  PGOLF_CHECK(rows <= 0x7fffffff, "fake_quant_int6_rows: ", rows, " rows exceed one grid");
  if (rows * cols == 0) return;
  fake_quant_int6_rows_kernel<<<unsigned(rows), kThreads, 0, ctx.stream()>>>(w, out, cols);
  check_launch("fake_quant_int6_rows_kernel");
}

}  // namespace pgolf::cuda
