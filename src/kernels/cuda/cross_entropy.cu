// Softcap + cross-entropy on the GPU (SPEC §2, Head): one block per row, fp32 throughout,
// block reductions in a fixed order (deterministic). The capped logit is recomputed in each
// pass instead of stored: V floats per row would cost more traffic than the tanh.
#include "kernels/cuda/cross_entropy.h"

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/reduce.cuh"

namespace pgolf::cuda {

namespace {

// l = c tanh(z/c) (or z when c <= 0), times inv_t = 1/temperature.
template <typename Z>
__device__ __forceinline__ float capped(Z z, float cap, float inv_t) {
  const float x = to_float(z);
  return (cap > 0.0f ? cap * tanhf(x / cap) : x) * inv_t;
}

// logsumexp of the capped row, max-shifted so no exp overflows.
template <typename Z>
__device__ float capped_logsumexp(const Z* zr, int64_t V, float cap, float inv_t, float* shared) {
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, capped(zr[j], cap, inv_t));
  mx = block_max(mx, shared);
  float sum = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) sum += expf(capped(zr[j], cap, inv_t) - mx);
  return mx + logf(block_sum(sum, shared));
}

template <typename Z>
__global__ void softcap_ce_forward_kernel(const Z* z, const int32_t* targets, float* losses,
                                          int64_t V, float cap, float inv_t) {
  __shared__ float shared[32];
  const int64_t r = blockIdx.x;
  const Z* zr = z + r * V;
  const float lse = capped_logsumexp(zr, V, cap, inv_t, shared);
  if (threadIdx.x == 0) losses[r] = lse - capped(zr[targets[r]], cap, inv_t);
}

// dz_j = g (softmax_j - [j = target]) (1 - th_j²), th_j = l_j / c = tanh(z_j / c).
template <typename Z>
__global__ void softcap_ce_backward_kernel(const Z* z, const int32_t* targets, const float* dloss,
                                           bf16* dz, int64_t V, float cap, bool accumulate) {
  __shared__ float shared[32];
  const int64_t r = blockIdx.x;
  const Z* zr = z + r * V;
  bf16* dzr = dz + r * V;
  const float lse = capped_logsumexp(zr, V, cap, 1.0f, shared);
  const float g = dloss[r], inv = cap > 0.0f ? 1.0f / cap : 0.0f;
  const int64_t target = targets[r];
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float l = capped(zr[j], cap, 1.0f), th = l * inv;  // th = 0 without a cap
    const float p = expf(l - lse) - (j == target ? 1.0f : 0.0f);
    const float d = g * p * (1.0f - th * th);
    dzr[j] = to_bf16(accumulate ? to_float(dzr[j]) + d : d);
  }
}

struct LossTerm {
  const float* losses;
  __device__ Terms<1> operator()(int64_t i) const { return {{losses[i]}}; }
};

// 256 threads for the usual vocabularies (1024: four logits a thread), up to 1024 for big ones.
int row_threads(int64_t V) { return V >= 8192 ? 1024 : V >= 2048 ? 512 : 256; }

}  // namespace

template <typename Z>
void softcap_ce_forward(Context& ctx, const Z* z, const int32_t* targets, float* losses,
                        int64_t rows, int64_t V, float cap, float temperature) {
  PGOLF_CHECK(temperature > 0, "the scoring temperature must be positive, got ", temperature);
  if (rows == 0) return;
  softcap_ce_forward_kernel<Z><<<unsigned(rows), row_threads(V), 0, ctx.stream()>>>(
      z, targets, losses, V, cap, 1.0f / temperature);
  check_launch("softcap_ce_forward_kernel");
}

template <typename Z>
void softcap_ce_backward(Context& ctx, const Z* z, const int32_t* targets, const float* dloss,
                         bf16* dz, int64_t rows, int64_t V, float cap, bool accumulate) {
  if (rows == 0) return;
  softcap_ce_backward_kernel<Z><<<unsigned(rows), row_threads(V), 0, ctx.stream()>>>(
      z, targets, dloss, dz, V, cap, accumulate);
  check_launch("softcap_ce_backward_kernel");
}

void add_mean_loss(Context& ctx, const float* losses, int64_t rows, double* total) {
  flat_sums<1>(ctx, LossTerm{losses}, total, rows, "add_mean_loss", double(rows));
}

#define PGOLF_INSTANTIATE(Z)                                                                \
  template void softcap_ce_forward<Z>(Context&, const Z*, const int32_t*, float*, int64_t, \
                                      int64_t, float, float);                              \
  template void softcap_ce_backward<Z>(Context&, const Z*, const int32_t*, const float*,   \
                                       bf16*, int64_t, int64_t, float, bool);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(bf16)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cuda
