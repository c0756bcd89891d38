// The fp32 element-wise parts of the optimizer step on the GPU (SPEC §3): Muon's momentum and
// update around the Newton–Schulz orthogonalisation (kernels/cuda/newton_schulz.h), the
// weight averages (EMA, SWA) and global gradient-norm clipping; the twins of optim/muon.cpp,
// optim/averaging.h and optim/grad_clip.h on fp32 parameters, gradients and state.
// Element for element the CPU's formulas, with the step's scalars formed in double on the
// host and rounded to float once as the CPU does (Muon's then read from device memory); nvcc
// contracts multiply-adds into FMAs, so the results may differ from the CPU's in the last
// bits (the CPU may contract too).
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// Muon's per-step scalars, formed in double on the host and rounded to float once as
// Muon<float>::step does. The Muon kernels read them from device memory, so one captured
// CUDA graph replays every step with new values (train/cuda/device_optimizer_set.h).
struct MuonStep {
  float lr;        // float(lr)
  float momentum;  // float(momentum)
  float keep;      // float(1 - lr wd)
  bool decay;      // wd > 0
};
MuonStep muon_step(double lr, double momentum, double weight_decay);

// float(sqrt(max(1, rows / cols))): the aspect-ratio scale of a rows x cols matrix's update.
float muon_scale(int64_t rows, int64_t cols);

// Muon's momentum with nesterov over n elements, s in device memory:
//   buf = buf mu + g;  g_nesterov = g + mu buf,  mu = s->momentum.
void muon_momentum(Context& ctx, float* buf, const float* g, float* g_nesterov, int64_t n,
                   const MuonStep* s);

// w = (s->decay ? w s->keep : w) - s->lr (u scale) over n elements, s in device memory, u the
// orthogonalised update (bf16, as newton_schulz5 writes it; the CPU keeps it in fp32) and
// scale = muon_scale(rows, cols).
void muon_update(Context& ctx, float* w, const bf16* u, int64_t n, float scale, const MuonStep* s);

// ema = ema float(decay) + float(1 - decay) p.
void ema_update(Context& ctx, float* ema, const float* params, int64_t n, double decay);
// sum += p (exact as on the CPU: one fp32 addition).
void swa_accumulate(Context& ctx, float* sum, const float* params, int64_t n);
// out = sum / float(count), count > 0 (bitwise the CPU's: one IEEE division).
void swa_average(Context& ctx, const float* sum, int64_t count, float* out, int64_t n);

// *sum_squares += sum of g² over n elements, into one double on the device (zero it before
// the first span): fp32 partials over fixed (column, row chunk) pieces of a [ceil(n/32), 32]
// view, their total in double, in a fixed order (kernels/cuda/reduce.cuh). The gradient norm
// is sqrt(*sum_squares); the CPU's global_grad_norm sums in double throughout, so the two
// agree to about fp32 rounding. The partials take grad_sum_squares_scratch(n) floats of
// ctx.scratch (reserve them before capturing a CUDA graph: growing the scratch synchronises).
void grad_sum_squares(Context& ctx, const float* g, int64_t n, double* sum_squares);
int64_t grad_sum_squares_scratch(int64_t n);

// torch's clip_grad_norm_ from the device's *sum_squares, without waiting for the host:
// coef = max_norm / (sqrt(*sum_squares) + 1e-6) in double, as clip_coefficient; when
// coef < 1, g *= float(coef). max_norm must be positive.
void clip_grads(Context& ctx, float* g, int64_t n, const double* sum_squares, double max_norm);

}  // namespace pgolf::cuda
