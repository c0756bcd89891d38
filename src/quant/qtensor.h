// QTensor: one tensor of the quantised artifact (SPEC §5 "Artifact", SEEDS.md §1
// "Quantisation and export"). A tensor is stored in one of three schemes:
//   kF32     – passthrough in fp32 (`f32`), for control tensors;
//   kF16     – passthrough in fp16 (`f16`, IEEE binary16 bits);
//   kIntRows – a rank-2 tensor as signed integers `q` (one int8 per element, |q| <=
//              2^(bits-1)-1) with one fp16 scale per row (`scales`, binary16 bits).
// Only the vectors of the tensor's own scheme are filled.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/shape.h"

namespace pgolf::quant {

enum class Scheme : uint8_t { kF32 = 0, kF16 = 1, kIntRows = 2 };

struct QTensor {
  std::string name;
  Shape shape;
  Scheme scheme = Scheme::kF32;
  int bits = 0;                   // kIntRows: 6 for int6, 8 for int8, ...
  std::vector<int8_t> q;          // kIntRows: row-major, numel(shape) entries
  std::vector<uint16_t> scales;   // kIntRows: fp16 bits, one per row
  std::vector<float> f32;         // kF32
  std::vector<uint16_t> f16;      // kF16: fp16 bits
};

// The tensor's values in float, row-major: q * float(fp16 scale) per row (computed in
// float) for kIntRows, fp16 → float for kF16, a copy for kF32. A QTensor whose vectors do
// not match its shape and scheme is a pgolf::Error naming it.
std::vector<float> dequantize(const QTensor& t);

}  // namespace pgolf::quant
