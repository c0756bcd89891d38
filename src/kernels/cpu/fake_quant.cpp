#include "kernels/cpu/fake_quant.h"

#include <algorithm>
#include <cmath>

namespace pgolf::cpu {

template <typename T>
void fake_quant_int6_rows(const T* w, T* out, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols >= 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* wr = w + r * cols;
    T* o = out + r * cols;
    T amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::abs(wr[c]));
    const T scale = std::max(amax / T(31), T(1) / T(31));
    for (int64_t c = 0; c < cols; ++c)
      o[c] = std::clamp(std::nearbyint(wr[c] / scale), T(-32), T(31)) * scale;
  }
}

template void fake_quant_int6_rows<float>(const float*, float*, int64_t, int64_t);
template void fake_quant_int6_rows<double>(const double*, double*, int64_t, int64_t);

}  // namespace pgolf::cpu
