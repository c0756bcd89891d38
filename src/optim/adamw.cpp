// AdamW (SPEC §3), torch's fused-kernel order; see adamw.h.
#include "optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pgolf {

namespace {
// Elements per chunk: many tiny parameters share one parallel loop with the big ones.
constexpr int64_t kChunk = 1 << 14;
}  // namespace

template <typename T>
AdamW<T>::AdamW(std::vector<ParamRef<T>> params, double beta1, double beta2, double eps)
    : params_(std::move(params)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  PGOLF_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
              "AdamW needs betas in [0, 1), got ", beta1, " and ", beta2);
  int64_t total = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    PGOLF_CHECK(p.value && p.grad, "AdamW was given a parameter without value or gradient");
    PGOLF_CHECK(p.numel() >= 0, "AdamW was given a parameter of negative size");
    offsets_.push_back(total);
    total += (p.numel() + 15) / 16 * 16;
    for (int64_t b = 0; b < p.numel(); b += kChunk)
      chunks_.push_back({i, b, std::min(p.numel(), b + kChunk)});
  }
  check_disjoint(params_, "AdamW");
  state_.resize(2 * total);
}

template <typename T>
void AdamW<T>::step(double lr, double weight_decay) {
  ++step_;
  // Scalar factors in double (torch's are Python floats), rounded once to T.
  const double bc1 = 1.0 - std::pow(beta1_, double(step_));
  const double bc2 = 1.0 - std::pow(beta2_, double(step_));
  const T step_size = T(lr / bc1), bc2_sqrt = T(std::sqrt(bc2)), eps = T(eps_);
  const T b1 = T(beta1_), b2 = T(beta2_), one_b1 = T(1.0 - beta1_), one_b2 = T(1.0 - beta2_);
  const bool decay = weight_decay != 0;
  const T keep = T(1.0 - lr * weight_decay);
  const int64_t half = state_.size() / 2;

#pragma omp parallel for schedule(static) if (chunks_.size() > 1)
  for (size_t c = 0; c < chunks_.size(); ++c) {
    const Chunk ch = chunks_[c];
    const ParamRef<T>& p = params_[ch.param];
    T* m = state_.data() + offsets_[ch.param];
    T* v = m + half;
    for (int64_t j = ch.begin; j < ch.end; ++j) {
      const T g = p.grad[j];
      T w = p.value[j];
      if (decay) w *= keep;
      m[j] = b1 * m[j] + one_b1 * g;
      v[j] = b2 * v[j] + one_b2 * g * g;
      const T denom = std::sqrt(v[j]) / bc2_sqrt + eps;
      p.value[j] = w - step_size * m[j] / denom;
    }
  }
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace pgolf
