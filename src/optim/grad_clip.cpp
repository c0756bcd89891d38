// Global gradient-norm clipping (SPEC §3).
#include "optim/grad_clip.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace pgolf {

namespace {

// The chunking fixes the order of additions, so the sum does not depend on how chunks are
// shared among threads.
constexpr int64_t kChunk = 1 << 15;

template <typename T>
double norm_impl(std::span<const T> g) {
  const int64_t n = int64_t(g.size());
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(size_t(nchunks), 0.0);
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    double lane[8] = {};  // eight lanes: vectorises without reassociating
    int64_t i = b;
    for (; i + 8 <= e; i += 8)
      for (int l = 0; l < 8; ++l) lane[l] += double(g[i + l]) * double(g[i + l]);
    for (; i < e; ++i) lane[(i - b) & 7] += double(g[i]) * double(g[i]);
    double s = 0;
    for (double v : lane) s += v;
    partial[size_t(c)] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

}  // namespace

double clip_coefficient(double norm, double max_norm) {
  PGOLF_CHECK(max_norm > 0, "gradient clipping needs a positive max norm, got ", max_norm);
  return std::min(1.0, max_norm / (norm + 1e-6));
}

namespace {

template <typename T>
double clip_impl(std::span<T> g, double max_norm) {
  const double norm = norm_impl(std::span<const T>(g));
  const double coef = clip_coefficient(norm, max_norm);
  if (coef < 1.0) {
    const T c = T(coef);
    const int64_t n = int64_t(g.size());
#pragma omp parallel for schedule(static) if (n >= kChunk)
    for (int64_t i = 0; i < n; ++i) g[size_t(i)] *= c;
  }
  return norm;
}

}  // namespace

double global_grad_norm(std::span<const float> grads) { return norm_impl(grads); }
double global_grad_norm(std::span<const double> grads) { return norm_impl(grads); }
double clip_grad_norm(std::span<float> grads, double max_norm) {
  return clip_impl(grads, max_norm);
}
double clip_grad_norm(std::span<double> grads, double max_norm) {
  return clip_impl(grads, max_norm);
}

}  // namespace pgolf
