// EMA and SWA of the weights (SPEC §3).
#include "optim/averaging.h"

#include "core/error.h"

namespace pgolf {

namespace {

// Below this many elements a parallel region costs more than the loop.
constexpr int64_t kParallelMin = 1 << 15;

template <typename T>
void ema_impl(std::span<T> ema, std::span<const T> p, double decay) {
  PGOLF_CHECK(ema.size() == p.size(), "EMA of ", ema.size(), " weights was given ", p.size());
  // Scalars formed in double (Python floats), rounded once to T.
  const T d = T(decay), rest = T(1.0 - decay);
  const int64_t n = int64_t(p.size());
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) ema[size_t(i)] = ema[size_t(i)] * d + rest * p[size_t(i)];
}

template <typename T>
void accumulate_impl(std::span<T> sum, std::span<const T> p) {
  PGOLF_CHECK(sum.size() == p.size(), "SWA sum of ", sum.size(), " weights was given ",
              p.size());
  const int64_t n = int64_t(p.size());
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) sum[size_t(i)] += p[size_t(i)];
}

template <typename T>
void average_impl(std::span<const T> sum, int64_t count, std::span<T> out) {
  PGOLF_CHECK(count > 0, "SWA average needs at least one snapshot, got ", count);
  PGOLF_CHECK(sum.size() == out.size(), "SWA sum of ", sum.size(), " weights was given ",
              out.size(), " outputs");
  const T c = T(count);
  const int64_t n = int64_t(sum.size());
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = sum[size_t(i)] / c;
}

}  // namespace

void ema_update(std::span<float> e, std::span<const float> p, double d) { ema_impl(e, p, d); }
void ema_update(std::span<double> e, std::span<const double> p, double d) { ema_impl(e, p, d); }
void swa_accumulate(std::span<float> s, std::span<const float> p) { accumulate_impl(s, p); }
void swa_accumulate(std::span<double> s, std::span<const double> p) { accumulate_impl(s, p); }
void swa_average(std::span<const float> s, int64_t c, std::span<float> o) {
  average_impl(s, c, o);
}
void swa_average(std::span<const double> s, int64_t c, std::span<double> o) {
  average_impl(s, c, o);
}

}  // namespace pgolf
