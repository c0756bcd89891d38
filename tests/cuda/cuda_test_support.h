// Shared by the CUDA kernel tests (tests/cuda/): the visible skip without a GPU, host data
// rounded to bf16 (so the CPU and CUDA kernels read the very same inputs), device round
// trips, and the element-wise comparison every test states its bf16 tolerance with.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/cuda/runtime.h"
#include "support/gradcheck.h"

namespace pgolf::test {

// Every test that launches a kernel starts with this: without a device it is skipped, and
// says so, rather than passing silently.
#define PGOLF_REQUIRE_GPU()                                                                  \
  do {                                                                                       \
    if (::pgolf::cuda::device_count() == 0)                                                  \
      GTEST_SKIP() << "no CUDA GPU: the CUDA kernel is compiled but cannot run here";        \
  } while (0)

inline float bf16_round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// n values ~ N(0, scale²), rounded to bf16 (exact in both bf16 and float).
inline std::vector<float> random_bf16_values(int64_t n, uint32_t seed, double scale = 1.0) {
  std::vector<float> v;
  v.reserve(size_t(n));
  for (double x : random_vector(n, seed, scale)) v.push_back(bf16_round(float(x)));
  return v;
}

// n values ~ N(0, scale²) in float.
inline std::vector<float> random_floats(int64_t n, uint32_t seed, double scale = 1.0) {
  std::vector<float> v;
  v.reserve(size_t(n));
  for (double x : random_vector(n, seed, scale)) v.push_back(float(x));
  return v;
}

inline std::vector<cuda::bf16> to_bf16(const std::vector<float>& v) {
  std::vector<cuda::bf16> out;
  out.reserve(v.size());
  for (float x : v) out.push_back(__float2bfloat16_rn(x));
  return out;
}

inline std::vector<float> to_floats(const std::vector<cuda::bf16>& v) {
  std::vector<float> out;
  out.reserve(v.size());
  for (cuda::bf16 x : v) out.push_back(__bfloat162float(x));
  return out;
}

template <typename T>
cuda::DeviceBuffer<T> upload(cuda::Context& ctx, const std::vector<T>& host) {
  cuda::DeviceBuffer<T> d(int64_t(host.size()));
  d.upload(host, ctx.stream());
  return d;
}

// Host floats uploaded as T: float as they are, bf16 rounded to nearest even (exact for
// values from random_bf16_values).
template <typename T>
cuda::DeviceBuffer<T> upload_as(cuda::Context& ctx, const std::vector<float>& host) {
  if constexpr (std::is_same_v<T, float>)
    return upload(ctx, host);
  else
    return upload(ctx, to_bf16(host));
}
inline cuda::DeviceBuffer<cuda::bf16> upload_bf16(cuda::Context& ctx,
                                                  const std::vector<float>& host) {
  return upload_as<cuda::bf16>(ctx, host);
}

template <typename T>
std::vector<T> download(cuda::Context& ctx, const cuda::DeviceBuffer<T>& d) {
  std::vector<T> host(size_t(d.size()));
  d.download(host, ctx.stream());
  return host;
}

inline std::vector<float> download_floats(cuda::Context& ctx,
                                          const cuda::DeviceBuffer<cuda::bf16>& d) {
  return to_floats(download(ctx, d));
}

// A float or bf16 device buffer's values as floats (exact either way).
template <typename T>
std::vector<float> download_as_floats(cuda::Context& ctx, const cuda::DeviceBuffer<T>& d) {
  if constexpr (std::is_same_v<T, float>)
    return download(ctx, d);
  else
    return download_floats(ctx, d);
}

inline constexpr double kBf16Rounding = 1.0 / 256;  // 2^-8: one bf16 rounding, with margin

// Expects |got_i - want_i| <= rtol |want_i| + floor · max_j |want_j| for every i and reports
// the worst element. rtol covers the roundings of the result (kBf16Rounding for one bf16
// rounding); floor the fp32 error of sums in a different order, relative to the data's scale.
template <typename G, typename W>
void expect_close(const std::vector<G>& got, const std::vector<W>& want, double rtol,
                  double floor, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (const W& w : want) scale = std::max(scale, std::fabs(double(w)));
  int64_t bad = 0, worst = -1;
  double worst_excess = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - double(want[i]));
    const double tol = rtol * std::fabs(double(want[i])) + floor * scale;
    if (!(err <= tol)) {  // also catches nan
      ++bad;
      if (worst < 0 || !(err - tol <= worst_excess)) worst_excess = err - tol, worst = int64_t(i);
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size()
                    << " elements out of tolerance; worst at " << worst << ": got "
                    << (worst >= 0 ? double(got[size_t(worst)]) : 0.0) << ", want "
                    << (worst >= 0 ? double(want[size_t(worst)]) : 0.0);
}

}  // namespace pgolf::test
