// When a kernel's loop is worth OpenMP threads: below ~32K elements of work, waking and
// joining threads costs more than it saves (and the double-precision gradient checks call
// every kernel thousands of times on tiny shapes). Used as `#pragma omp parallel ... if (...)`.
#pragma once
#include <cstdint>

namespace pgolf::cpu {

inline constexpr int64_t kMinParallelWork = int64_t(1) << 15;

inline bool worth_threads(int64_t work) { return work >= kMinParallelWork; }

}  // namespace pgolf::cpu
