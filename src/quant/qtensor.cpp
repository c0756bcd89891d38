#include "quant/qtensor.h"

#include "core/error.h"
#include "core/half.h"

namespace pgolf::quant {

std::vector<float> dequantize(const QTensor& t) {
  const int64_t n = numel(t.shape);
  switch (t.scheme) {
    case Scheme::kF32:
      PGOLF_CHECK(int64_t(t.f32.size()) == n, "quantised tensor ", t.name, " holds ",
                  t.f32.size(), " fp32 values but its shape ", to_string(t.shape), " needs ", n);
      return t.f32;
    case Scheme::kF16: {
      PGOLF_CHECK(int64_t(t.f16.size()) == n, "quantised tensor ", t.name, " holds ",
                  t.f16.size(), " fp16 values but its shape ", to_string(t.shape), " needs ", n);
      std::vector<float> out(n);
      for (int64_t i = 0; i < n; ++i) out[i] = half_to_float(t.f16[i]);
      return out;
    }
    case Scheme::kIntRows: {
      PGOLF_CHECK(t.shape.size() == 2, "quantised tensor ", t.name,
                  " is stored as integer rows but has shape ", to_string(t.shape),
                  ", not a matrix");
      const int64_t rows = t.shape[0], cols = t.shape[1];
      PGOLF_CHECK(int64_t(t.q.size()) == n && int64_t(t.scales.size()) == rows,
                  "quantised tensor ", t.name, " holds ", t.q.size(), " integers and ",
                  t.scales.size(), " row scales but its shape ", to_string(t.shape), " needs ",
                  n, " and ", rows);
      std::vector<float> out(n);
      for (int64_t r = 0; r < rows; ++r) {
        const float s = half_to_float(t.scales[r]);
        for (int64_t c = 0; c < cols; ++c)
          out[r * cols + c] = static_cast<float>(t.q[r * cols + c]) * s;
      }
      return out;
    }
  }
  fail("quantised tensor ", t.name, " has unknown scheme ", int(t.scheme));
}

}  // namespace pgolf::quant
