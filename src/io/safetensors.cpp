// safetensors checkpoints (SPEC §5), byte-compatible with the Python `safetensors`
// library: it reads our files and we read its files. The reader trusts nothing in the
// file: every length and offset is checked before it is used, so a truncated or corrupt
// checkpoint is one clear sentence naming the file, never a crash.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "io/atomic_file.h"
#include "io/file_size.h"

namespace pgolf::io {
namespace {

// The header length and tensor data are copied straight from/to memory, which is right
// only on a little-endian host (x86-64 and aarch64, the machines pgolf targets).
static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

using nlohmann::json;

constexpr uint64_t kLengthBytes = 8;
// The Python library's limit; a larger length means the file is not safetensors at all.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
constexpr DType kAllDTypes[] = {DType::F32,  DType::F64, DType::F16,
                                DType::BF16, DType::I32, DType::I64};

std::optional<DType> parse_dtype(const std::string& name) {
  for (DType t : kAllDTypes)
    if (name == dtype_name(t)) return t;
  return std::nullopt;
}

// numel(shape) * dtype_size, or nullopt when the product overflows 64 bits.
std::optional<uint64_t> byte_size(const Shape& shape, DType t) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  uint64_t n = static_cast<uint64_t>(dtype_size(t));
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  return n;
}

// nlohmann's what() starts with "[json.exception.parse_error.101] "; the user wants the rest.
std::string json_reason(const json::exception& e) {
  const std::string what = e.what();
  const size_t cut = what.find("] ");
  return cut == std::string::npos ? what : what.substr(cut + 2);
}

// ---- reading ----------------------------------------------------------------------

// One tensor's header entry, validated, before its data is read.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // relative to the start of the data section
};

// Reads the length prefix and the JSON text it announces; `in` is left at the data.
std::string read_header_text(const std::string& path, std::ifstream& in, uint64_t file_size) {
  if (file_size < kLengthBytes)
    fail(path, ": file is ", file_size,
         " bytes, too short for the 8-byte safetensors header length");
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), kLengthBytes))
    fail(path, ": reading the safetensors header length failed");
  if (n > kMaxHeaderBytes)
    fail(path, ": safetensors header length ", n,
         " exceeds the 100 MB limit (not a safetensors file?)");
  if (n > file_size - kLengthBytes)
    fail(path, ": safetensors header length ", n, " runs past the end of the ", file_size,
         "-byte file");
  std::string text(n, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n)))
    fail(path, ": reading the ", n, "-byte safetensors header failed");
  return text;
}

json parse_header(const std::string& path, const std::string& text) {
  json header;
  try {
    header = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(path, ": the safetensors header is not valid JSON (", json_reason(e), ")");
  }
  if (!header.is_object()) fail(path, ": the safetensors header is not a JSON object");
  return header;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& v) {
  if (!v.is_object())
    fail(path, ": the safetensors header's ", kMetadataKey, " is not a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string())
      fail(path, ": the safetensors ", kMetadataKey, " entry \"", key, "\" is not a string");
    out[key] = value.get<std::string>();
  }
  return out;
}

const json& field(const std::string& where, const json& entry, const char* key) {
  const auto it = entry.find(key);
  if (it == entry.end()) fail(where, "'s header entry has no \"", key, "\"");
  return *it;
}

// A JSON array of non-negative integers that fit in int64 (dims and offsets alike).
std::vector<int64_t> parse_naturals(const std::string& where, const json& v, const char* key) {
  auto bad = [&] {
    fail(where, "'s ", key, " ", v.dump(), " is not a list of non-negative integers");
  };
  if (!v.is_array()) bad();
  std::vector<int64_t> out;
  for (const json& x : v) {
    if (!x.is_number_unsigned() || x.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) bad();
    out.push_back(x.get<int64_t>());
  }
  return out;
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v,
                  uint64_t data_size) {
  const std::string where = path + ": tensor " + name;
  if (!v.is_object()) fail(where, "'s header entry is not a JSON object");
  const json& dtype_json = field(where, v, "dtype");
  if (!dtype_json.is_string()) fail(where, "'s dtype ", dtype_json.dump(), " is not a string");
  const auto dtype = parse_dtype(dtype_json.get<std::string>());
  if (!dtype)
    fail(where, " has unsupported dtype ", dtype_json.get<std::string>(),
         " (pgolf reads F32, F64, F16, BF16, I32 and I64)");
  const Shape shape = parse_naturals(where, field(where, v, "shape"), "shape");
  const auto offsets = parse_naturals(where, field(where, v, "data_offsets"), "data_offsets");
  if (offsets.size() != 2) fail(where, "'s data_offsets must be [begin, end]");
  const uint64_t begin = offsets[0], end = offsets[1];
  const auto bytes = byte_size(shape, *dtype);
  if (!bytes) fail(where, "'s shape ", to_string(shape), " is too large");
  if (end < begin || end - begin != *bytes)
    fail(where, "'s data_offsets [", begin, ", ", end, "] do not match its dtype ",
         dtype_name(*dtype), " and shape ", to_string(shape), " (", *bytes, " bytes)");
  if (end > data_size)
    fail(where, "'s data_offsets [", begin, ", ", end, "] run past the end of the ", data_size,
         "-byte data section (truncated file?)");
  return {name, *dtype, shape, begin, end};
}

// Entries must be sorted by offset; empty tensors occupy no bytes and overlap nothing.
void check_no_overlap(const std::string& path, const std::vector<Entry>& entries) {
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    if (prev && e.begin < prev->end)
      fail(path, ": tensors ", prev->name, " [", prev->begin, ", ", prev->end, "] and ", e.name,
           " [", e.begin, ", ", e.end, "] overlap in the data section");
    prev = &e;
  }
}

std::vector<uint8_t> read_bytes(const std::string& path, std::ifstream& in, const Entry& e,
                                uint64_t data_start) {
  std::vector<uint8_t> data(e.end - e.begin);
  in.seekg(static_cast<std::streamoff>(data_start + e.begin));
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size())))
    fail(path, ": reading tensor ", e.name, "'s data failed");
  return data;
}

// ---- writing ----------------------------------------------------------------------

// Refuses a file the format cannot express or whose bytes disagree with dtype * shape.
void check_writable(const std::string& path, const StFile& file) {
  std::set<std::string> seen;
  for (const StTensor& t : file.tensors) {
    if (t.name == kMetadataKey) fail(path, ": a tensor cannot be named ", kMetadataKey);
    if (!seen.insert(t.name).second) fail(path, ": tensor ", t.name, " appears twice");
    if (std::any_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d < 0; }))
      fail(path, ": tensor ", t.name, " has a negative dimension in shape ", to_string(t.shape));
    const auto bytes = byte_size(t.shape, t.dtype);
    if (!bytes) fail(path, ": tensor ", t.name, "'s shape ", to_string(t.shape), " is too large");
    if (t.data.size() != *bytes)
      fail(path, ": tensor ", t.name, " holds ", t.data.size(), " bytes but its dtype ",
           dtype_name(t.dtype), " and shape ", to_string(t.shape), " need ", *bytes);
  }
}

// The JSON header, tensors in file order with contiguous offsets, padded with spaces to a
// multiple of 8 bytes as the Python library does (keeps the data section aligned).
std::string header_text(const std::string& path, const StFile& file) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;
  uint64_t offset = 0;
  for (const StTensor& t : file.tensors) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // names and metadata must be valid UTF-8
    fail(path, ": cannot write the safetensors header (", json_reason(e), ")");
  }
  text.append((kLengthBytes - text.size() % kLengthBytes) % kLengthBytes, ' ');
  return text;
}

// ---- conversion -------------------------------------------------------------------

template <typename Stored, typename Out, typename Widen>
std::vector<Out> convert_each(const std::vector<uint8_t>& data, Widen widen) {
  std::vector<Out> out(data.size() / sizeof(Stored));
  for (size_t i = 0; i < out.size(); ++i) {
    Stored v;
    std::memcpy(&v, data.data() + i * sizeof(Stored), sizeof(Stored));
    out[i] = static_cast<Out>(widen(v));
  }
  return out;
}

template <typename Out>
std::vector<Out> convert(const StTensor& t) {
  const int64_t need = numel(t.shape) * dtype_size(t.dtype);
  if (static_cast<int64_t>(t.data.size()) != need)
    fail("tensor ", t.name, " holds ", t.data.size(), " bytes but its dtype ", dtype_name(t.dtype),
         " and shape ", to_string(t.shape), " need ", need);
  const auto same = [](auto v) { return v; };
  switch (t.dtype) {
    case DType::F32:
      return convert_each<float, Out>(t.data, same);
    case DType::F64:
      return convert_each<double, Out>(t.data, same);
    case DType::F16:
      return convert_each<uint16_t, Out>(t.data, half_to_float);
    case DType::BF16:
      return convert_each<uint16_t, Out>(t.data, bf16_to_float);
    case DType::I32:
    case DType::I64:
      break;
  }
  fail("tensor ", t.name, " has integer dtype ", dtype_name(t.dtype),
       ", not a floating-point one (F32, F64, F16 or BF16)");
}

void add_tensor(StFile& file, const std::string& name, const Shape& shape, DType dtype,
                const void* values) {
  if (file.find(name)) fail("tensor ", name, " is added to the safetensors file twice");
  if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; }))
    fail("tensor ", name, " has a negative dimension in shape ", to_string(shape));
  StTensor t{name, dtype, shape, std::vector<uint8_t>(numel(shape) * dtype_size(dtype))};
  if (!t.data.empty()) std::memcpy(t.data.data(), values, t.data.size());
  file.tensors.push_back(std::move(t));
}

}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
  }
  fail("unknown safetensors dtype ", static_cast<int>(t));
}

int64_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::F16:
      return 2;
    case DType::BF16:
      return 2;
    case DType::I32:
      return 4;
    case DType::I64:
      return 8;
  }
  fail("unknown safetensors dtype ", static_cast<int>(t));
}

std::vector<double> StTensor::to_f64() const { return convert<double>(*this); }
std::vector<float> StTensor::to_f32() const { return convert<float>(*this); }

const StTensor* StFile::find(const std::string& name) const {
  for (const StTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void StFile::add_f32(const std::string& name, const Shape& shape, const float* values) {
  add_tensor(*this, name, shape, DType::F32, values);
}

void StFile::add_f64(const std::string& name, const Shape& shape, const double* values) {
  add_tensor(*this, name, shape, DType::F64, values);
}

StFile read_safetensors(const std::string& path) {
  const uint64_t file_size = static_cast<uint64_t>(file_size_or_fail(path, "safetensors file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the safetensors file (", std::strerror(errno), ")");
  const std::string text = read_header_text(path, in, file_size);
  const json header = parse_header(path, text);
  const uint64_t data_start = kLengthBytes + text.size();
  const uint64_t data_size = file_size - data_start;

  StFile file;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey)
      file.metadata = parse_metadata(path, value);
    else
      entries.push_back(parse_entry(path, name, value, data_size));
  }
  // File order is data order; the JSON object itself has no reliable order.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  check_no_overlap(path, entries);
  for (const Entry& e : entries)
    file.tensors.push_back({e.name, e.dtype, e.shape, read_bytes(path, in, e, data_start)});
  return file;
}

void write_safetensors(const std::string& path, const StFile& file) {
  check_writable(path, file);
  const std::string text = header_text(path, file);
  const uint64_t length = text.size();
  write_file_atomic(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(&length), kLengthBytes);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const StTensor& t : file.tensors)
      out.write(reinterpret_cast<const char*>(t.data.data()),
                static_cast<std::streamsize>(t.data.size()));
  });
}

}  // namespace pgolf::io
