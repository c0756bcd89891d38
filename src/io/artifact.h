// The artifact (SPEC §5): one self-describing, versioned, checksummed file holding the
// quantised weights and the model config, compressed with zstd (level 22 by default). Its
// byte size is what counts against the 16,000,000-byte limit.
//
// Layout, all integers little-endian:
//
//   offset  size  field
//        0     8  magic "PGOLFART"
//        8     4  u32 format version (1)
//       12     8  u64 payload size (uncompressed)
//       20     8  u64 frame size (compressed); the file is exactly 36 + frame size bytes
//       28     8  u64 FNV-1a 64 checksum of bytes [0, 28) followed by the frame
//       36     …  one zstd frame of the payload, with its content size and its own
//                 content checksum (ZSTD_c_checksumFlag = 1)
//
// Two checksums on purpose: zstd's frame checksum (32 bits of XXH64 of the decompressed
// payload) is verified only after the decompressor has already consumed the stored bytes,
// whereas FNV-1a over the header and the stored frame rejects any corrupted byte before zstd
// sees it and names the problem ("checksum mismatch"). FNV-1a is a few lines with no
// dependency, ~1 GB/s (16 ms on a 16 MB artifact), and catches accidental corruption, which
// is all it is for (it is not a defence against a forger; the reader's bounds checks are).
//
// Payload:
//   u32 config length, config JSON bytes (stored verbatim, not parsed here)
//   u32 tensor count, then per tensor:
//     u16 name length (1..65535), name bytes (any bytes, UTF-8 not required; names unique)
//     u8 scheme (0 f32, 1 f16, 2 int rows), u8 bits (2..8 for int rows, 0 for f32/f16)
//     u8 rank (0..8), rank × u64 dims (each <= INT64_MAX, product must not overflow)
//     data: f32 — numel × f32; f16 — numel × u16 (fp16 bits);
//           int rows — rows × u16 fp16 scales, then numel × i8 values, one per byte, each
//           within ±(2^(bits-1) − 1). rows = product of all dims but the last (1 for
//           rank <= 1), i.e. one scale per row of the row-major matrix.
//   Nothing may follow the last tensor.
//
// Int values are stored one per byte: zstd's entropy stage already codes the ~6 significant
// bits of an int6 byte, and bit-packing hides the byte-aligned symbol structure from it
// (measured in tests/io/test_artifact.cpp, ArtifactMeasure.Int6PackingAfterZstd).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/qtensor.h"

namespace pgolf::io {

inline constexpr uint32_t kArtifactVersion = 1;
inline constexpr size_t kArtifactHeaderBytes = 36;

struct Artifact {
  std::string config_json;
  std::vector<quant::QTensor> tensors;
};

// Encodes, compresses and writes the artifact through write_file_atomic. Tensors the format
// cannot express (duplicate or empty or over-long name, rank > 8, negative dim, data sizes
// disagreeing with the shape, bits outside 2..8, a value outside ±(2^(bits-1) − 1)) throw
// pgolf::Error naming `path`. QTensor::bits is ignored (stored as 0) for f32 and f16.
void write_artifact(const std::string& path, const std::string& config_json,
                    const std::vector<quant::QTensor>& tensors, int zstd_level = 22);

// Reads and validates a whole artifact; any problem is one pgolf::Error naming `path`.
// Allocations are bounded by the bytes actually present (never by a length field alone).
Artifact read_artifact(const std::string& path);

// The byte size write_artifact would produce (what counts against the size limit).
int64_t artifact_bytes(const std::string& config_json,
                       const std::vector<quant::QTensor>& tensors, int zstd_level = 22);

// ---- in-memory layers (the file functions above are built from these; tests use them) ----

// The uncompressed payload; `where` names the destination in error messages.
std::string encode_artifact_payload(const std::string& where, const std::string& config_json,
                                    const std::vector<quant::QTensor>& tensors);
// Header + zstd frame around an already encoded payload (no validation of the payload).
std::string wrap_artifact_payload(const std::string& payload, int zstd_level);
// The complete file bytes.
std::string encode_artifact(const std::string& where, const std::string& config_json,
                            const std::vector<quant::QTensor>& tensors, int zstd_level = 22);
// Parses complete file bytes; errors name `path`.
Artifact decode_artifact(const std::string& path, const std::string& bytes);

}  // namespace pgolf::io
