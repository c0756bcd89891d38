// The fp32 element-wise parts of the optimizer step on the GPU (SPEC §3; see optimizer.h):
// one functor per formula, run by for_each; the gradient norm's sum by flat_sums.
#include "kernels/cuda/optimizer.h"

#include <algorithm>
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/reduce.cuh"

namespace pgolf::cuda {

namespace {

// The step's scalars are read from device memory (optimizer.h): one load per element, the
// same address for every thread, served from cache.
struct MuonMomentum {
  float *buf, *g_nesterov;
  const float* g;
  const MuonStep* s;
  __device__ void operator()(int64_t i) const {
    const float mu = s->momentum;
    const float b = buf[i] * mu + g[i];
    buf[i] = b;
    g_nesterov[i] = g[i] + mu * b;
  }
};

struct MuonApply {
  float* w;
  const bf16* u;
  float scale;
  const MuonStep* s;
  __device__ void operator()(int64_t i) const {
    const MuonStep st = *s;
    const float uj = to_float(u[i]) * scale;
    const float wj = st.decay ? w[i] * st.keep : w[i];
    w[i] = wj - st.lr * uj;
  }
};

struct Ema {
  float* ema;
  const float* p;
  float d, rest;
  __device__ void operator()(int64_t i) const { ema[i] = ema[i] * d + rest * p[i]; }
};

struct SwaAccumulate {
  float* sum;
  const float* p;
  __device__ void operator()(int64_t i) const { sum[i] += p[i]; }
};

struct SwaAverage {
  const float* sum;
  float* out;
  float count;
  __device__ void operator()(int64_t i) const { out[i] = sum[i] / count; }
};

struct Square {
  const float* g;
  __device__ Terms<1> operator()(int64_t i) const { return {{g[i] * g[i]}}; }
};

// clip_coefficient on the device: the same double operations (IEEE sqrt and division), so
// the same factor for the same sum; a NaN norm leaves g alone, as std::min(1.0, NaN) does.
struct Clip {
  float* g;
  const double* sum_squares;
  double max_norm;
  __device__ void operator()(int64_t i) const {
    const double coef = max_norm / (sqrt(*sum_squares) + 1e-6);
    if (coef < 1.0) g[i] *= float(coef);
  }
};

}  // namespace

MuonStep muon_step(double lr, double momentum, double weight_decay) {
  return {float(lr), float(momentum), float(1.0 - lr * weight_decay), weight_decay > 0};
}

float muon_scale(int64_t rows, int64_t cols) {
  PGOLF_CHECK(rows > 0 && cols > 0, "Muon needs non-empty matrices, got ", rows, "x", cols);
  return float(std::sqrt(std::max(1.0, double(rows) / double(cols))));
}

void muon_momentum(Context& ctx, float* buf, const float* g, float* g_nesterov, int64_t n,
                   const MuonStep* s) {
  for_each(ctx, n, MuonMomentum{buf, g_nesterov, g, s}, "muon_momentum");
}

void muon_update(Context& ctx, float* w, const bf16* u, int64_t n, float scale, const MuonStep* s) {
  for_each(ctx, n, MuonApply{w, u, scale, s}, "muon_update");
}

void ema_update(Context& ctx, float* ema, const float* params, int64_t n, double decay) {
  for_each(ctx, n, Ema{ema, params, float(decay), float(1.0 - decay)}, "ema_update");
}

void swa_accumulate(Context& ctx, float* sum, const float* params, int64_t n) {
  for_each(ctx, n, SwaAccumulate{sum, params}, "swa_accumulate");
}

void swa_average(Context& ctx, const float* sum, int64_t count, float* out, int64_t n) {
  PGOLF_CHECK(count > 0, "SWA average needs at least one snapshot, got ", count);
  for_each(ctx, n, SwaAverage{sum, out, float(count)}, "swa_average");
}

void grad_sum_squares(Context& ctx, const float* g, int64_t n, double* sum_squares) {
  flat_sums<1>(ctx, Square{g}, sum_squares, n, "grad_sum_squares");
}

int64_t grad_sum_squares_scratch(int64_t n) {
  using namespace reduce_detail;
  return row_chunks((n + kTileCols - 1) / kTileCols) * kTileCols;  // column_sums' partials
}

void clip_grads(Context& ctx, float* g, int64_t n, const double* sum_squares, double max_norm) {
  PGOLF_CHECK(max_norm > 0, "gradient clipping needs a positive max norm, got ", max_norm);
  for_each(ctx, n, Clip{g, sum_squares, max_norm}, "clip_grads");
}

}  // namespace pgolf::cuda
