// The artifact file (SPEC §5; layout in artifact.h). The reader trusts nothing: every
// length is checked against the bytes that remain before it is used, so allocations are
// bounded by the file itself, and a corrupt artifact is one sentence naming the file.
#include "io/artifact.h"

#include <zstd.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/file_size.h"

namespace pgolf::io {
namespace {

static_assert(std::endian::native == std::endian::little, "the artifact is little-endian");

using quant::QTensor;
using quant::Scheme;

constexpr char kMagic[8] = {'P', 'G', 'O', 'L', 'F', 'A', 'R', 'T'};
constexpr size_t kChecksumOffset = 28;
constexpr int kMaxRank = 8;
constexpr size_t kMaxNameBytes = 0xFFFF;

uint64_t fnv1a(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<uint8_t>(p[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;

// FNV-1a over the header fields before the checksum, then the frame.
uint64_t file_checksum(const char* header, const char* frame, size_t frame_size) {
  return fnv1a(fnv1a(kFnvBasis, header, kChecksumOffset), frame, frame_size);
}

const char* scheme_name(Scheme s) {
  switch (s) {
    case Scheme::kF32: return "f32";
    case Scheme::kF16: return "f16";
    case Scheme::kIntRows: return "int rows";
  }
  return "unknown";
}

// Rows of a row-major tensor: product of all dims but the last (1 for rank <= 1).
uint64_t rows_of(const Shape& shape) {
  uint64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) r *= static_cast<uint64_t>(shape[i]);
  return r;
}

int32_t max_level(int bits) { return (1 << (bits - 1)) - 1; }

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
void put_array(std::string& out, const std::vector<T>& v) {
  if (!v.empty()) out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// ---- writing ----------------------------------------------------------------------

void check_writable(const std::string& where, const QTensor& t, uint64_t& n) {
  const std::string who = where + ": tensor " + t.name;
  if (t.shape.size() > static_cast<size_t>(kMaxRank))
    fail(who, " has rank ", t.shape.size(), " (the artifact allows at most ", kMaxRank, ")");
  n = 1;
  for (int64_t d : t.shape) {
    if (d < 0) fail(who, " has a negative dimension in shape ", to_string(t.shape));
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      fail(who, "'s shape ", to_string(t.shape), " is too large");
  }
  auto need = [&](size_t have, uint64_t want, const char* what) {
    if (have != want)
      fail(who, " holds ", have, " ", what, " but its scheme ", scheme_name(t.scheme),
           " and shape ", to_string(t.shape), " need ", want);
  };
  switch (t.scheme) {
    case Scheme::kF32: need(t.f32.size(), n, "f32 values"); break;
    case Scheme::kF16: need(t.f16.size(), n, "f16 values"); break;
    case Scheme::kIntRows: {
      if (t.bits < 2 || t.bits > 8) fail(who, " has ", t.bits, " bits (int rows take 2 to 8)");
      need(t.q.size(), n, "int values");
      need(t.scales.size(), rows_of(t.shape), "scales");
      const int32_t m = max_level(t.bits);
      for (size_t i = 0; i < t.q.size(); ++i)
        if (t.q[i] < -m || t.q[i] > m)
          fail(who, " has value ", int(t.q[i]), " at index ", i, ", outside ±", m, " for ",
               t.bits, " bits");
      break;
    }
    default: fail(who, " has unknown scheme ", int(t.scheme));
  }
}

// ---- reading ----------------------------------------------------------------------

// A cursor over the decompressed payload; every read is bounds-checked first.
class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes) : path_(path), b_(bytes) {}
  size_t remaining() const { return b_.size() - pos_; }
  const char* take(uint64_t n, const std::string& what) {
    if (n > remaining())
      fail(path_, ": ", what, " needs ", n, " bytes but only ", remaining(),
           " remain in the payload (corrupt artifact)");
    const char* p = b_.data() + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T get(const std::string& what) {
    T v;
    std::memcpy(&v, take(sizeof v, what), sizeof v);
    return v;
  }
  template <typename T>
  std::vector<T> get_array(uint64_t count, const std::string& what) {
    uint64_t n;
    if (__builtin_mul_overflow(count, sizeof(T), &n) || n > remaining())
      fail(path_, ": ", what, " needs ", count, " × ", sizeof(T), " bytes but only ", remaining(),
           " remain in the payload (corrupt artifact)");
    std::vector<T> v(count);
    const char* src = take(n, what);
    if (n) std::memcpy(v.data(), src, n);
    return v;
  }

 private:
  const std::string& path_;
  const std::string& b_;
  size_t pos_ = 0;
};

QTensor parse_tensor(const std::string& path, Reader& r, size_t index) {
  QTensor t;
  const std::string nth = "tensor #" + std::to_string(index);
  const uint16_t name_len = r.get<uint16_t>(nth + "'s name length");
  if (name_len == 0) fail(path, ": ", nth, " has an empty name (corrupt artifact)");
  const char* name = r.take(name_len, nth + "'s name");
  t.name.assign(name, name_len);
  const std::string who = path + ": tensor " + t.name;
  const uint8_t scheme = r.get<uint8_t>("tensor " + t.name + "'s scheme");
  if (scheme > static_cast<uint8_t>(Scheme::kIntRows))
    fail(who, " has unknown scheme ", int(scheme), " (corrupt or newer artifact)");
  t.scheme = static_cast<Scheme>(scheme);
  t.bits = r.get<uint8_t>("tensor " + t.name + "'s bits");
  if (t.scheme == Scheme::kIntRows ? (t.bits < 2 || t.bits > 8) : t.bits != 0)
    fail(who, " has ", t.bits, " bits, invalid for scheme ", scheme_name(t.scheme),
         " (corrupt artifact)");
  const uint8_t rank = r.get<uint8_t>("tensor " + t.name + "'s rank");
  if (rank > kMaxRank)
    fail(who, " has rank ", int(rank), " (at most ", kMaxRank, "; corrupt artifact)");
  uint64_t n = 1;
  bool overflow = false;
  for (int i = 0; i < rank; ++i) {
    const uint64_t d = r.get<uint64_t>("tensor " + t.name + "'s shape");
    if (d > static_cast<uint64_t>(INT64_MAX))
      fail(who, " has dimension ", d, ", too large (corrupt artifact)");
    t.shape.push_back(static_cast<int64_t>(d));
    overflow |= __builtin_mul_overflow(n, d, &n);
  }
  if (overflow) fail(who, "'s shape ", to_string(t.shape), " overflows 64 bits (corrupt artifact)");
  const std::string data = "tensor " + t.name + "'s data (shape " + to_string(t.shape) + ")";
  switch (t.scheme) {
    case Scheme::kF32: t.f32 = r.get_array<float>(n, data); break;
    case Scheme::kF16: t.f16 = r.get_array<uint16_t>(n, data); break;
    case Scheme::kIntRows: {
      // rows_of cannot overflow: every prefix product of the dims was checked above.
      t.scales = r.get_array<uint16_t>(rows_of(t.shape), "tensor " + t.name + "'s scales");
      t.q = r.get_array<int8_t>(n, data);
      const int32_t m = max_level(t.bits);
      for (size_t i = 0; i < t.q.size(); ++i)
        if (t.q[i] < -m || t.q[i] > m)
          fail(who, " has value ", int(t.q[i]), " at index ", i, ", outside ±", m, " for ",
               t.bits, " bits (corrupt artifact)");
      break;
    }
  }
  return t;
}

Artifact parse_payload(const std::string& path, const std::string& payload) {
  Reader r(path, payload);
  Artifact a;
  const uint32_t config_len = r.get<uint32_t>("the config length");
  const char* config = r.take(config_len, "the config JSON");
  a.config_json.assign(config, config_len);
  const uint32_t count = r.get<uint32_t>("the tensor count");
  std::set<std::string> seen;
  for (uint32_t i = 0; i < count; ++i) {
    a.tensors.push_back(parse_tensor(path, r, i));
    if (!seen.insert(a.tensors.back().name).second)
      fail(path, ": tensor ", a.tensors.back().name, " appears twice (corrupt artifact)");
  }
  if (r.remaining() != 0)
    fail(path, ": ", r.remaining(), " unexpected bytes follow the last of ", count,
         " tensors (corrupt artifact)");
  return a;
}

// Streams the frame out, growing the output as data arrives (at most doubling what has
// really been produced), so a lying size field never makes us allocate its claim.
std::string decompress(const std::string& path, const char* frame, size_t frame_size,
                       uint64_t payload_size) {
  const unsigned long long content = ZSTD_getFrameContentSize(frame, frame_size);
  if (content == ZSTD_CONTENTSIZE_ERROR)
    fail(path, ": the compressed data is not a zstd frame (corrupt artifact)");
  if (content != payload_size)
    fail(path, ": the zstd frame holds ", content == ZSTD_CONTENTSIZE_UNKNOWN ? "an unknown" : "",
         content == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("") : std::to_string(content),
         " bytes but the header says ", payload_size, " (corrupt artifact)");
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) fail(path, ": could not create a zstd decompression context");
  std::string out;
  ZSTD_inBuffer in{frame, frame_size, 0};
  size_t produced = 0;
  for (;;) {
    if (produced == out.size()) {
      // Room for one byte past the claim, so a frame longer than its header is detected.
      const uint64_t cap = payload_size + 1;
      const uint64_t grow = std::max<uint64_t>(produced, uint64_t{1} << 20);
      out.resize(std::min<uint64_t>(cap, produced + grow));
    }
    ZSTD_outBuffer ob{out.data(), out.size(), produced};
    const size_t ret = ZSTD_decompressStream(dctx.get(), &ob, &in);
    if (ZSTD_isError(ret))
      fail(path, ": zstd decompression failed (", ZSTD_getErrorName(ret), "; corrupt artifact)");
    produced = ob.pos;
    if (produced > payload_size)
      fail(path, ": the zstd frame decompresses to more than the header's ", payload_size,
           " bytes (corrupt artifact)");
    if (ret == 0) break;  // frame complete, content checksum verified
    if (in.pos == in.size && ob.pos < ob.size)
      fail(path, ": the zstd frame ends early (truncated or corrupt artifact)");
  }
  if (in.pos != in.size)
    fail(path, ": ", in.size - in.pos, " bytes follow the zstd frame (corrupt artifact)");
  if (produced != payload_size)
    fail(path, ": the zstd frame decompresses to ", produced, " bytes but the header says ",
         payload_size, " (corrupt artifact)");
  out.resize(produced);
  return out;
}

}  // namespace

std::string encode_artifact_payload(const std::string& where, const std::string& config_json,
                                    const std::vector<QTensor>& tensors) {
  if (config_json.size() > UINT32_MAX)
    fail(where, ": the config JSON is ", config_json.size(), " bytes (at most 4 GiB)");
  if (tensors.size() > UINT32_MAX) fail(where, ": too many tensors (", tensors.size(), ")");
  std::string out;
  put<uint32_t>(out, static_cast<uint32_t>(config_json.size()));
  out += config_json;
  put<uint32_t>(out, static_cast<uint32_t>(tensors.size()));
  std::set<std::string> seen;
  for (const QTensor& t : tensors) {
    if (t.name.empty()) fail(where, ": a tensor has an empty name");
    if (t.name.size() > kMaxNameBytes)
      fail(where, ": tensor name ", t.name.substr(0, 40), "... is longer than 65535 bytes");
    if (!seen.insert(t.name).second) fail(where, ": tensor ", t.name, " appears twice");
    uint64_t n = 0;
    check_writable(where, t, n);
    put<uint16_t>(out, static_cast<uint16_t>(t.name.size()));
    out += t.name;
    put<uint8_t>(out, static_cast<uint8_t>(t.scheme));
    put<uint8_t>(out, t.scheme == Scheme::kIntRows ? static_cast<uint8_t>(t.bits) : 0);
    put<uint8_t>(out, static_cast<uint8_t>(t.shape.size()));
    for (int64_t d : t.shape) put<uint64_t>(out, static_cast<uint64_t>(d));
    switch (t.scheme) {
      case Scheme::kF32: put_array(out, t.f32); break;
      case Scheme::kF16: put_array(out, t.f16); break;
      case Scheme::kIntRows:
        put_array(out, t.scales);
        put_array(out, t.q);
        break;
    }
  }
  return out;
}

std::string wrap_artifact_payload(const std::string& payload, int zstd_level) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) fail("could not create a zstd compression context");
  auto check = [](size_t r) {
    if (ZSTD_isError(r)) fail("zstd compression failed (", ZSTD_getErrorName(r), ")");
  };
  check(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, zstd_level));
  check(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1));
  check(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1));
  std::string out(kArtifactHeaderBytes + ZSTD_compressBound(payload.size()), '\0');
  const size_t frame = ZSTD_compress2(cctx.get(), out.data() + kArtifactHeaderBytes,
                                      out.size() - kArtifactHeaderBytes, payload.data(),
                                      payload.size());
  check(frame);
  out.resize(kArtifactHeaderBytes + frame);
  std::memcpy(out.data(), kMagic, 8);
  const uint32_t version = kArtifactVersion;
  const uint64_t sizes[2] = {payload.size(), frame};
  std::memcpy(out.data() + 8, &version, 4);
  std::memcpy(out.data() + 12, sizes, 16);
  const uint64_t sum = file_checksum(out.data(), out.data() + kArtifactHeaderBytes, frame);
  std::memcpy(out.data() + kChecksumOffset, &sum, 8);
  return out;
}

std::string encode_artifact(const std::string& where, const std::string& config_json,
                            const std::vector<QTensor>& tensors, int zstd_level) {
  return wrap_artifact_payload(encode_artifact_payload(where, config_json, tensors), zstd_level);
}

Artifact decode_artifact(const std::string& path, const std::string& bytes) {
  if (bytes.size() < kArtifactHeaderBytes)
    fail(path, ": file is ", bytes.size(), " bytes, too short for the ", kArtifactHeaderBytes,
         "-byte artifact header");
  if (std::memcmp(bytes.data(), kMagic, 8) != 0)
    fail(path, ": not a pgolf artifact (its first 8 bytes are not \"PGOLFART\")");
  uint32_t version;
  uint64_t payload_size, frame_size, sum;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&payload_size, bytes.data() + 12, 8);
  std::memcpy(&frame_size, bytes.data() + 20, 8);
  std::memcpy(&sum, bytes.data() + kChecksumOffset, 8);
  if (version != kArtifactVersion)
    fail(path, ": artifact format version ", version, " is not supported (this pgolf reads ",
         kArtifactVersion, ")");
  const uint64_t body = bytes.size() - kArtifactHeaderBytes;
  if (frame_size != body)
    fail(path, ": the header announces ", frame_size, " compressed bytes but ", body,
         " follow it (truncated or corrupt artifact)");
  const char* frame = bytes.data() + kArtifactHeaderBytes;
  if (file_checksum(bytes.data(), frame, body) != sum)
    fail(path, ": checksum mismatch (the artifact is corrupt)");
  return parse_payload(path, decompress(path, frame, body, payload_size));
}

void write_artifact(const std::string& path, const std::string& config_json,
                    const std::vector<QTensor>& tensors, int zstd_level) {
  const std::string bytes = encode_artifact(path, config_json, tensors, zstd_level);
  write_file_atomic(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

Artifact read_artifact(const std::string& path) {
  const int64_t size = file_size_or_fail(path, "artifact");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the artifact for reading");
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), size)) fail(path, ": reading the artifact failed");
  return decode_artifact(path, bytes);
}

int64_t artifact_bytes(const std::string& config_json, const std::vector<QTensor>& tensors,
                       int zstd_level) {
  return static_cast<int64_t>(encode_artifact("artifact", config_json, tensors, zstd_level).size());
}

}  // namespace pgolf::io
