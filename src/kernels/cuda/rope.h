// Partial rotary position embedding on the GPU (SPEC §2, Block), the twin of
// kernels/cpu/rope.h: per head, the first r = rdims dims (0 = all of hd) rotate in halves
// x1 = z[:r/2], x2 = z[r/2:r]: out = [x1 cos + x2 sin, -x1 sin + x2 cos]; dims past r pass
// through. x and out in bf16, the rotation in fp32 with fp32 cos/sin tables.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// The cos and sin tables [seq_len, rdims/2] of cpu::rope_tables<float> (so both backends use
// the same angles, long-sequence base rescale included), on the device.
struct RopeTables {
  DeviceBuffer<float> cos, sin;
};
RopeTables rope_tables(Context& ctx, int64_t seq_len, int64_t rdims, double base,
                       int64_t train_seq_len);

// x, out: [B, seq_len, heads, hd]; out may alias x. rdims as in cpu::rope_forward.
void rope_forward(Context& ctx, const bf16* x, bf16* out, const float* cos, const float* sin,
                  int64_t B, int64_t seq_len, int64_t heads, int64_t hd, int64_t rdims);

// dx += R^T dout (the rotation by the negated angle; pass-through dims add dout).
void rope_backward(Context& ctx, const bf16* dout, bf16* dx, const float* cos, const float* sin,
                   int64_t B, int64_t seq_len, int64_t heads, int64_t hd, int64_t rdims);

}  // namespace pgolf::cuda
