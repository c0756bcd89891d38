// safetensors files (SPEC §5): 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
// then the raw little-endian tensor data. pgolf writes F32 (and F64 for double-precision
// tests); the reader accepts F32, F64, F16 and BF16 and converts on request.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/shape.h"

namespace pgolf::io {

enum class DType { F32, F64, F16, BF16, I32, I64 };
const char* dtype_name(DType t);
int64_t dtype_size(DType t);

struct StTensor {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::vector<uint8_t> data;  // raw little-endian bytes, numel(shape) * dtype_size(dtype)

  // The values converted to double / float; fails in one sentence on a non-float dtype.
  std::vector<double> to_f64() const;
  std::vector<float> to_f32() const;
};

struct StFile {
  std::map<std::string, std::string> metadata;
  std::vector<StTensor> tensors;  // in data-offset order when read; written in this order

  const StTensor* find(const std::string& name) const;
  void add_f32(const std::string& name, const Shape& shape, const float* values);
  void add_f64(const std::string& name, const Shape& shape, const double* values);
};

// Reads and validates a whole file: header length within the file, JSON well formed,
// known dtypes, data_offsets consistent with dtype*shape, inside the data section and
// non-overlapping. Any problem throws pgolf::Error naming the file and the problem.
StFile read_safetensors(const std::string& path);

// Writes the standard layout (header padded with spaces to a multiple of 8 bytes, tensors
// contiguous in `file.tensors` order, `__metadata__` when non-empty) through
// write_file_atomic, so a crash never leaves a half-written file. A tensor whose data size
// disagrees with dtype * shape, or a duplicate name, throws pgolf::Error naming `path`.
void write_safetensors(const std::string& path, const StFile& file);

}  // namespace pgolf::io
