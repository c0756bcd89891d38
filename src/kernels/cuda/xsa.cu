// XSA on the GPU (SPEC §2, Block): one warp per (row, kv group); lane j holds elements
// d = j + 32i (i < kPerLane) of n and of the gradient sums in registers; every dot product is
// a fixed-order warp butterfly (deterministic).
#include "kernels/cuda/xsa.h"

#include <type_traits>
#include <utility>

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

constexpr float kNormEps = 1e-12f;  // F.normalize's eps
constexpr int kWarpSize = 32, kWarpsPerBlock = kThreads / kWarpSize, kMaxHeadDim = 1024;

// Lane `lane`'s elements d = lane + 32i of one head's hd values, 0 past hd.
template <int kPerLane>
__device__ __forceinline__ void load_lane(const bf16* src, int hd, int lane,
                                          float (&out)[kPerLane]) {
#pragma unroll
  for (int i = 0; i < kPerLane; i++) {
    const int d = lane + kWarpSize * i;
    out[i] = d < hd ? to_float(src[d]) : 0.0f;
  }
}

template <int kPerLane>
__device__ __forceinline__ float warp_dot(const float (&a)[kPerLane], const float (&b)[kPerLane]) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kPerLane; i++) s += a[i] * b[i];
  return warp_sum(s);
}

// out_h = y_h - (y_h·n) n for the group's heads, n = v / max(‖v‖, eps). `pairs` = rows·Hkv.
template <int kPerLane>
__global__ void xsa_forward_kernel(const bf16* y, const bf16* v, bf16* out, int64_t pairs, int H,
                                   int Hkv, int hd) {
  const int64_t pair = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (pair >= pairs) return;  // the whole warp: pair is per warp
  const int lane = threadIdx.x % kWarpSize, group = H / Hkv;
  const int64_t row = pair / Hkv;
  const int g = int(pair % Hkv);
  float n[kPerLane];
  load_lane(v + pair * hd, hd, lane, n);  // v row (row, g) is v + (row·Hkv + g)·hd
  const float inv = 1.0f / fmaxf(sqrtf(warp_dot(n, n)), kNormEps);
#pragma unroll
  for (int i = 0; i < kPerLane; i++) n[i] *= inv;
  for (int h = g * group; h < (g + 1) * group; h++) {
    const int64_t off = (row * H + h) * hd;
    float yh[kPerLane];
    load_lane(y + off, hd, lane, yh);
    const float c = warp_dot(yh, n);
#pragma unroll
    for (int i = 0; i < kPerLane; i++) {
      const int d = lane + kWarpSize * i;
      if (d < hd) out[off + d] = to_bf16(yh[i] - c * n[i]);
    }
  }
}

// dy_h += dout_h - (dout_h·n) n;  dn = -Σ_h [(y_h·n) dout_h + (dout_h·n) y_h];
// dv += (dn - (dn·n) n)/‖v‖, or dn/eps where ‖v‖ <= eps (the clamp is constant there).
template <int kPerLane>
__global__ void xsa_backward_kernel(const bf16* dout, const bf16* y, const bf16* v, bf16* dy,
                                    bf16* dv, int64_t pairs, int H, int Hkv, int hd) {
  const int64_t pair = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (pair >= pairs) return;
  const int lane = threadIdx.x % kWarpSize, group = H / Hkv;
  const int64_t row = pair / Hkv;
  const int g = int(pair % Hkv);
  float n[kPerLane], dn[kPerLane];
  load_lane(v + pair * hd, hd, lane, n);
  const float norm = sqrtf(warp_dot(n, n));
  const bool clamped = !(norm > kNormEps);
  const float inv = 1.0f / (clamped ? kNormEps : norm);
#pragma unroll
  for (int i = 0; i < kPerLane; i++) n[i] *= inv, dn[i] = 0.0f;
  for (int h = g * group; h < (g + 1) * group; h++) {
    const int64_t off = (row * H + h) * hd;
    float yh[kPerLane], go[kPerLane];
    load_lane(y + off, hd, lane, yh);
    load_lane(dout + off, hd, lane, go);
    const float yn = warp_dot(yh, n), gn = warp_dot(go, n);
#pragma unroll
    for (int i = 0; i < kPerLane; i++) {
      const int d = lane + kWarpSize * i;
      if (d < hd) dy[off + d] = to_bf16(to_float(dy[off + d]) + go[i] - gn * n[i]);
      dn[i] -= yn * go[i] + gn * yh[i];
    }
  }
  const float dnn = clamped ? 0.0f : warp_dot(dn, n);
  bf16* gv = dv + pair * hd;
#pragma unroll
  for (int i = 0; i < kPerLane; i++) {
    const int d = lane + kWarpSize * i;
    if (d < hd) gv[d] = to_bf16(to_float(gv[d]) + (dn[i] - dnn * n[i]) * inv);
  }
}

// Calls f(std::integral_constant<int, kPerLane>) with the smallest power of two kPerLane such
// that 32 kPerLane >= hd (hd <= kMaxHeadDim).
template <int kPerLane = 1, typename F>
void with_lane_elements(int64_t hd, F&& f) {
  if constexpr (kPerLane * kWarpSize <= kMaxHeadDim) {
    if (hd <= kPerLane * kWarpSize) return f(std::integral_constant<int, kPerLane>{});
    with_lane_elements<kPerLane * 2>(hd, std::forward<F>(f));
  }
}

void check_shape(int64_t H, int64_t Hkv, int64_t hd) {
  PGOLF_CHECK(Hkv > 0 && H > 0 && H % Hkv == 0, "XSA needs num_heads (", H,
              ") to be a multiple of num_kv_heads (", Hkv, ")");
  PGOLF_CHECK(hd > 0 && hd <= kMaxHeadDim, "the CUDA XSA kernels support head dims 1 to ",
              kMaxHeadDim, ", got ", hd);
}

unsigned warp_blocks(int64_t pairs) {
  return unsigned((pairs + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

void xsa_forward(Context& ctx, const bf16* y, const bf16* v, bf16* out, int64_t rows, int64_t H,
                 int64_t Hkv, int64_t hd) {
  check_shape(H, Hkv, hd);
  const int64_t pairs = rows * Hkv;
  if (pairs == 0) return;
  with_lane_elements(hd, [&](auto per_lane) {
    xsa_forward_kernel<decltype(per_lane)::value>
        <<<warp_blocks(pairs), kThreads, 0, ctx.stream()>>>(y, v, out, pairs, int(H), int(Hkv),
                                                            int(hd));
    check_launch("xsa_forward_kernel");
  });
}

void xsa_backward(Context& ctx, const bf16* dout, const bf16* y, const bf16* v, bf16* dy, bf16* dv,
                  int64_t rows, int64_t H, int64_t Hkv, int64_t hd) {
  check_shape(H, Hkv, hd);
  const int64_t pairs = rows * Hkv;
  if (pairs == 0) return;
  with_lane_elements(hd, [&](auto per_lane) {
    xsa_backward_kernel<decltype(per_lane)::value>
        <<<warp_blocks(pairs), kThreads, 0, ctx.stream()>>>(dout, y, v, dy, dv, pairs, int(H),
                                                            int(Hkv), int(hd));
    check_launch("xsa_backward_kernel");
  });
}

}  // namespace pgolf::cuda
