// Partial RoPE on the GPU (SPEC §2, Block). One thread per rotated pair (j, j + r/2) or
// pass-through dim of a head: hd - r/2 threads per head.
#include "kernels/cuda/rope.h"

#include <vector>

#include "kernels/cpu/rope.h"
#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

// Rotates src by sign times the angle into dst (sign = +1 forward, -1 for R^T): with
// s' = sign sin, y1 = x1 cos + x2 s', y2 = -x1 s' + x2 cos. accumulate: dst += y (dst must
// not alias src); else dst = y, where each pair is read before it is written, so dst may be src.
template <bool accumulate>
__global__ void rotate_kernel(const bf16* src, bf16* dst, const float* cos, const float* sin,
                              float sign, int64_t B, int64_t seq_len, int64_t heads, int64_t hd,
                              int64_t r) {
  const int64_t half = r / 2, per_head = hd - half, total = B * seq_len * heads * per_head;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t slot = i % per_head, head = i / per_head;  // head over [B, seq_len, heads]
    const int64_t t = (head / heads) % seq_len, off = head * hd;
    if (slot < half) {
      const int64_t j = slot;
      const float x1 = to_float(src[off + j]), x2 = to_float(src[off + j + half]);
      const float c = cos[t * half + j], s = sign * sin[t * half + j];
      float y1 = x1 * c + x2 * s, y2 = -x1 * s + x2 * c;
      if (accumulate) {
        y1 += to_float(dst[off + j]);
        y2 += to_float(dst[off + j + half]);
      }
      dst[off + j] = to_bf16(y1);
      dst[off + j + half] = to_bf16(y2);
    } else {
      const int64_t d = r + (slot - half);
      if (accumulate)
        dst[off + d] = to_bf16(to_float(dst[off + d]) + to_float(src[off + d]));
      else if (dst != src)
        dst[off + d] = src[off + d];
    }
  }
}

template <bool accumulate>
void rotate(Context& ctx, const bf16* src, bf16* dst, const float* cos, const float* sin,
            float sign, int64_t B, int64_t seq_len, int64_t heads, int64_t hd, int64_t rdims) {
  const int64_t r = rdims == 0 ? hd : rdims;
  PGOLF_CHECK(r > 0 && r % 2 == 0 && r <= hd, "RoPE needs an even number of rotary dims in 1..",
              hd, ", got ", r);
  const int64_t total = B * seq_len * heads * (hd - r / 2);
  if (total == 0) return;
  rotate_kernel<accumulate><<<grid_for(total), kThreads, 0, ctx.stream()>>>(
      src, dst, cos, sin, sign, B, seq_len, heads, hd, r);
  check_launch("rope rotate_kernel");
}

}  // namespace

RopeTables rope_tables(Context& ctx, int64_t seq_len, int64_t rdims, double base,
                       int64_t train_seq_len) {
  std::vector<float> cos(size_t(seq_len * rdims / 2)), sin(cos.size());
  cpu::rope_tables<float>(seq_len, rdims, base, train_seq_len, cos.data(), sin.data());
  RopeTables tables{DeviceBuffer<float>(int64_t(cos.size())),
                    DeviceBuffer<float>(int64_t(sin.size()))};
  tables.cos.upload(cos, ctx.stream());
  tables.sin.upload(sin, ctx.stream());
  return tables;
}

void rope_forward(Context& ctx, const bf16* x, bf16* out, const float* cos, const float* sin,
                  int64_t B, int64_t seq_len, int64_t heads, int64_t hd, int64_t rdims) {
  rotate<false>(ctx, x, out, cos, sin, 1.0f, B, seq_len, heads, hd, rdims);
}

void rope_backward(Context& ctx, const bf16* dout, bf16* dx, const float* cos, const float* sin,
                   int64_t B, int64_t seq_len, int64_t heads, int64_t hd, int64_t rdims) {
  rotate<true>(ctx, dout, dx, cos, sin, -1.0f, B, seq_len, heads, hd, rdims);
}

}  // namespace pgolf::cuda
