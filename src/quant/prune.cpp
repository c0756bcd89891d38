#include "quant/prune.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace pgolf::quant {

bool is_prunable(const Shape& shape) {
  return shape.size() == 2 && shape[0] * shape[1] > kPruneMinElements;
}

float magnitude_threshold(const float* w, int64_t n, double fraction) {
  PGOLF_CHECK(n > 0, "the magnitude quantile of no values is undefined");
  PGOLF_CHECK(fraction >= 0 && fraction <= 1, "a pruning fraction must lie in [0, 1], got ",
              fraction);
  std::vector<float> a(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) a[size_t(i)] = std::fabs(w[i]);
  // torch.quantile in float (quantile_sorted): rank = q·(n−1) in float, then torch's lerp
  // between the order statistics floor(rank) and ceil(rank), found by selection.
  const float q = static_cast<float>(fraction);
  const float rank = q * static_cast<float>(n - 1);
  const int64_t below = std::min<int64_t>(static_cast<int64_t>(rank), n - 1);
  const int64_t above = std::min<int64_t>(static_cast<int64_t>(std::ceil(rank)), n - 1);
  std::nth_element(a.begin(), a.begin() + below, a.end());
  const float lo = a[size_t(below)];
  const float hi = above == below ? lo : *std::min_element(a.begin() + below + 1, a.end());
  const float t = rank - static_cast<float>(below);
  return t < 0.5f ? lo + t * (hi - lo) : hi - (hi - lo) * (1.0f - t);
}

int64_t prune_by_magnitude(float* w, int64_t n, double fraction) {
  PGOLF_CHECK(fraction >= 0 && fraction < 1, "the pruning fraction must lie in [0, 1), got ",
              fraction);
  if (fraction == 0 || n == 0) return 0;
  const float thresh = magnitude_threshold(w, n, fraction);
  int64_t zeroed = 0;
  for (int64_t i = 0; i < n; ++i)
    if (std::fabs(w[i]) < thresh) {
      zeroed += w[i] != 0.0f;
      w[i] = 0.0f;
    }
  return zeroed;
}

}  // namespace pgolf::quant
