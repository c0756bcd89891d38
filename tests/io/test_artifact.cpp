// The artifact (SPEC §5): bit-exact round trips for every scheme, one clear pgolf::Error for
// each kind of broken file, a seeded fuzz test over mutated files and mutated payloads, and
// a measurement of one-per-byte vs bit-packed int6 after zstd.
#include "io/artifact.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "support/temp_dir_test.h"

namespace fs = std::filesystem;
using namespace pgolf::io;
using pgolf::quant::QTensor;
using pgolf::quant::Scheme;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

QTensor f32_tensor(const std::string& name, pgolf::Shape shape, std::mt19937_64& rng) {
  QTensor t;
  t.name = name, t.shape = shape, t.scheme = Scheme::kF32;
  std::normal_distribution<float> g;
  t.f32.resize(pgolf::numel(shape));
  for (float& v : t.f32) v = g(rng);
  return t;
}

QTensor f16_tensor(const std::string& name, pgolf::Shape shape, std::mt19937_64& rng) {
  QTensor t;
  t.name = name, t.shape = shape, t.scheme = Scheme::kF16;
  t.f16.resize(pgolf::numel(shape));
  for (uint16_t& v : t.f16) v = static_cast<uint16_t>(rng());
  return t;
}

// Rows = product of all dims but the last (1 for rank <= 1), as the format defines.
QTensor int_tensor(const std::string& name, pgolf::Shape shape, int bits, std::mt19937_64& rng) {
  QTensor t;
  t.name = name, t.shape = shape, t.scheme = Scheme::kIntRows, t.bits = bits;
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  const int m = (1 << (bits - 1)) - 1;
  std::uniform_int_distribution<int> d(-m, m);
  t.q.resize(pgolf::numel(shape));
  for (int8_t& v : t.q) v = static_cast<int8_t>(d(rng));
  t.scales.resize(rows);
  for (uint16_t& s : t.scales) s = static_cast<uint16_t>(0x2000 + rng() % 0x1000);
  return t;
}

// Every scheme, every bit width, 0-d and empty tensors, a non-UTF-8 name, a NaN.
std::vector<QTensor> sample_tensors(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<QTensor> ts;
  ts.push_back(f32_tensor("tok_emb.weight", {7, 5}, rng));
  ts.back().f32[3] = std::nanf("0x123");
  ts.push_back(f32_tensor("bigram.scale", {}, rng));
  ts.push_back(f16_tensor("smear.gate", {9}, rng));
  ts.push_back(f16_tensor("empty", {0, 4}, rng));
  for (int bits = 2; bits <= 8; ++bits)
    ts.push_back(int_tensor("blocks." + std::to_string(bits) + ".mlp.fc.weight", {6, 11}, bits, rng));
  ts.push_back(int_tensor("rank3", {2, 3, 4}, 6, rng));
  ts.push_back(int_tensor("rank1", {5}, 4, rng));
  ts.push_back(int_tensor("rank0", {}, 8, rng));
  ts.push_back(int_tensor("no.cols", {3, 0}, 6, rng));
  ts.push_back(f32_tensor(std::string("\xff\xfe not utf8", 11), {2}, rng));
  return ts;
}

const std::string kConfig = R"({"model_dim": 512, "num_layers": 11})";

void expect_same(const std::vector<QTensor>& a, const std::vector<QTensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].name);
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_EQ(a[i].scheme, b[i].scheme);
    EXPECT_EQ(a[i].scheme == Scheme::kIntRows ? a[i].bits : 0, b[i].bits);
    EXPECT_EQ(a[i].q, b[i].q);
    EXPECT_EQ(a[i].scales, b[i].scales);
    EXPECT_EQ(a[i].f16, b[i].f16);
    ASSERT_EQ(a[i].f32.size(), b[i].f32.size());
    if (!a[i].f32.empty()) {
      EXPECT_EQ(0, std::memcmp(a[i].f32.data(), b[i].f32.data(), a[i].f32.size() * 4));
    }
  }
}

// The format's checksum, written independently of the reader: FNV-1a 64 over bytes [0, 28)
// then the frame. Lets a test corrupt a file and still get past the checksum.
void fix_checksum(std::string& file) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < file.size(); ++i) {
    if (i >= 28 && i < kArtifactHeaderBytes) continue;
    h ^= static_cast<uint8_t>(file[i]);
    h *= 0x100000001b3ULL;
  }
  std::memcpy(file.data() + 28, &h, 8);
}

template <typename T>
void poke(std::string& s, size_t at, T v) {
  std::memcpy(s.data() + at, &v, sizeof v);
}

// What a file made of `bytes` does on reading: "" when it reads back, else the message.
// Any exception other than pgolf::Error fails the test.
std::string outcome(const std::string& bytes) {
  try {
    decode_artifact("fuzz.pgart", bytes);
    return "";
  } catch (const pgolf::Error& e) {
    return e.what();
  }
}

class Artifact : public pgolf::test::TempDirTest {
 protected:
  Artifact() : TempDirTest("pgolf_artifact") {}
  std::string write_raw(const std::string& bytes, const std::string& name = "raw.pgart") {
    const std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
};

TEST_F(Artifact, RoundTripIsBitExactForEveryScheme) {
  const auto tensors = sample_tensors(1);
  const std::string p = path("model.pgart");
  write_artifact(p, kConfig, tensors, 3);
  const auto a = read_artifact(p);
  EXPECT_EQ(a.config_json, kConfig);
  expect_same(tensors, a.tensors);
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(p)), artifact_bytes(kConfig, tensors, 3));
  for (const auto& e : fs::directory_iterator(dir()))
    EXPECT_EQ(e.path().filename(), "model.pgart") << "leftover temporary";
}

TEST_F(Artifact, RoundTripAtLevel22AndEmpty) {
  const auto tensors = sample_tensors(2);
  const std::string p = path("a.pgart");
  write_artifact(p, kConfig, tensors);
  expect_same(tensors, read_artifact(p).tensors);
  write_artifact(p, "", {});
  const auto a = read_artifact(p);
  EXPECT_EQ(a.config_json, "");
  EXPECT_TRUE(a.tensors.empty());
}

TEST_F(Artifact, HeaderLayout) {
  const std::string bytes = encode_artifact("x", kConfig, sample_tensors(3), 1);
  EXPECT_EQ(bytes.substr(0, 8), "PGOLFART");
  uint32_t version;
  uint64_t payload, frame;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&payload, bytes.data() + 12, 8);
  std::memcpy(&frame, bytes.data() + 20, 8);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(payload, encode_artifact_payload("x", kConfig, sample_tensors(3)).size());
  EXPECT_EQ(frame + kArtifactHeaderBytes, bytes.size());
  EXPECT_EQ(ZSTD_getFrameContentSize(bytes.data() + 36, frame), payload);
}

TEST_F(Artifact, WrongMagic) {
  std::string b = encode_artifact("x", kConfig, sample_tensors(4), 1);
  b[0] = 'X';
  const std::string p = write_raw(b);
  const std::string msg = error_of([&] { read_artifact(p); });
  EXPECT_TRUE(contains(msg, p)) << msg;
  EXPECT_TRUE(contains(msg, "not a pgolf artifact")) << msg;
}

TEST_F(Artifact, WrongVersion) {
  std::string b = encode_artifact("x", kConfig, sample_tensors(4), 1);
  poke<uint32_t>(b, 8, 2);
  const std::string p = write_raw(b);
  const std::string msg = error_of([&] { read_artifact(p); });
  EXPECT_TRUE(contains(msg, p + ": artifact format version 2 is not supported")) << msg;
}

TEST_F(Artifact, TruncatedAtEveryLength) {
  const std::string b = encode_artifact("x", kConfig, sample_tensors(5), 1);
  for (size_t n = 0; n < b.size(); ++n) {
    const std::string msg = outcome(b.substr(0, n));
    ASSERT_TRUE(contains(msg, "fuzz.pgart: ")) << n << ": " << msg;
    if (n < kArtifactHeaderBytes)
      EXPECT_TRUE(contains(msg, "too short for the 36-byte artifact header")) << n << ": " << msg;
    else
      EXPECT_TRUE(contains(msg, "compressed bytes but")) << n << ": " << msg;
  }
  EXPECT_TRUE(contains(outcome(b + "x"), "compressed bytes but"));
}

TEST_F(Artifact, ChecksumMismatch) {
  const std::string b = encode_artifact("x", kConfig, sample_tensors(6), 1);
  for (size_t at : {size_t{12}, size_t{29}, size_t{40}, b.size() / 2, b.size() - 1}) {
    std::string c = b;
    c[at] ^= 0x10;
    EXPECT_TRUE(contains(outcome(c), "checksum mismatch")) << at << ": " << outcome(c);
  }
}

TEST_F(Artifact, MissingFileAndDirectory) {
  EXPECT_TRUE(contains(error_of([&] { read_artifact(path("none.pgart")); }), "none.pgart"));
  EXPECT_TRUE(contains(error_of([&] { read_artifact(dir().string()); }), dir().string()));
}

// Past the checksum: a frame whose size disagrees with the header, a frame that is not
// zstd, a corrupted frame (zstd's own content checksum or decoder), trailing bytes.
TEST_F(Artifact, FrameProblemsPastTheChecksum) {
  const std::string b = encode_artifact("x", kConfig, sample_tensors(7), 1);
  std::string c = b;
  uint64_t payload;
  std::memcpy(&payload, b.data() + 12, 8);
  poke<uint64_t>(c, 12, payload + 1);
  fix_checksum(c);
  EXPECT_TRUE(contains(outcome(c), "the zstd frame holds")) << outcome(c);

  c = b;
  c[36] ^= 0x01;  // zstd magic
  fix_checksum(c);
  EXPECT_TRUE(contains(outcome(c), "not a zstd frame")) << outcome(c);

  c = b;
  c[c.size() - 2] ^= 0x01;  // inside zstd's content checksum
  fix_checksum(c);
  EXPECT_TRUE(contains(outcome(c), "zstd decompression failed")) << outcome(c);

  c = wrap_artifact_payload(encode_artifact_payload("x", kConfig, {}), 1);
  const std::string extra = wrap_artifact_payload("zz", 1).substr(kArtifactHeaderBytes);
  c += extra;
  poke<uint64_t>(c, 20, c.size() - kArtifactHeaderBytes);
  fix_checksum(c);
  EXPECT_TRUE(contains(outcome(c), "bytes follow the zstd frame")) << outcome(c);
}

// Payload problems, each reached through a valid frame and checksum.
TEST_F(Artifact, PayloadProblems) {
  std::mt19937_64 rng(8);
  auto payload_of = [&](const std::vector<QTensor>& ts) {
    return encode_artifact_payload("x", "{}", ts);
  };
  auto read_payload = [](const std::string& p) { return outcome(wrap_artifact_payload(p, 1)); };
  // Layout of one tensor named "w" after the 4 + 2 + 4 = 10 bytes of config and count:
  // name len @10, name @12, scheme @13, bits @14, rank @15, dims @16.
  const std::string one = payload_of({int_tensor("w", {2, 3}, 6, rng)});
  EXPECT_EQ(read_payload(one), "");

  std::string p = one;
  p[13] = 7;
  EXPECT_TRUE(contains(read_payload(p), "tensor w has unknown scheme 7")) << read_payload(p);
  p = one;
  p[14] = 9;
  EXPECT_TRUE(contains(read_payload(p), "has 9 bits, invalid for scheme int rows"));
  p = one;
  p[15] = 9;
  EXPECT_TRUE(contains(read_payload(p), "has rank 9")) << read_payload(p);
  p = one;
  poke<uint64_t>(p, 16, uint64_t{1} << 40);
  poke<uint64_t>(p, 24, uint64_t{1} << 40);
  EXPECT_TRUE(contains(read_payload(p), "overflows 64 bits")) << read_payload(p);
  p = one;
  poke<uint64_t>(p, 16, ~uint64_t{0});
  EXPECT_TRUE(contains(read_payload(p), "too large")) << read_payload(p);
  p = one;
  poke<uint64_t>(p, 16, uint64_t{1} << 30);  // a huge claim must not be allocated
  EXPECT_TRUE(contains(read_payload(p), "remain in the payload")) << read_payload(p);
  p = one;
  p.back() = 32;  // an int6 value of 32
  EXPECT_TRUE(contains(read_payload(p), "has value 32 at index 5, outside ±31 for 6 bits"))
      << read_payload(p);
  p = one;
  p.back() = static_cast<char>(-128);
  p[14] = 8;
  EXPECT_TRUE(contains(read_payload(p), "outside ±127")) << read_payload(p);
  EXPECT_TRUE(contains(read_payload(one + "!"), "1 unexpected bytes follow the last of 1"));
  p = one;
  poke<uint32_t>(p, 0, 1000);
  EXPECT_TRUE(contains(read_payload(p), "the config JSON needs 1000 bytes")) << read_payload(p);
  p = one;
  poke<uint16_t>(p, 10, 0);
  EXPECT_TRUE(contains(read_payload(p), "tensor #0 has an empty name")) << read_payload(p);
  p = one;
  poke<uint32_t>(p, 6, 2);
  EXPECT_TRUE(contains(read_payload(p), "tensor #1's name length needs 2 bytes"))
      << read_payload(p);
  const QTensor w = int_tensor("w", {2, 3}, 6, rng);
  p = payload_of({w, int_tensor("v", {1}, 2, rng)});
  p.replace(p.find('v'), 1, "w");
  poke<uint32_t>(p, 6, 2);
  EXPECT_TRUE(contains(read_payload(p), "tensor w appears twice")) << read_payload(p);
}

TEST_F(Artifact, WriterRefusesWhatTheFormatCannotHold) {
  std::mt19937_64 rng(9);
  const std::string p = path("w.pgart");
  auto err = [&](std::vector<QTensor> ts) { return error_of([&] { write_artifact(p, "{}", ts, 1); }); };
  QTensor t = int_tensor("w", {2, 3}, 6, rng);
  t.q[1] = -32;
  EXPECT_TRUE(contains(err({t}), p + ": tensor w has value -32 at index 1, outside ±31"));
  t = int_tensor("w", {2, 3}, 6, rng);
  t.bits = 9;
  EXPECT_TRUE(contains(err({t}), "has 9 bits (int rows take 2 to 8)"));
  t = int_tensor("w", {2, 3}, 6, rng);
  t.scales.pop_back();
  EXPECT_TRUE(contains(err({t}), "holds 1 scales but its scheme int rows and shape [2, 3] need 2"));
  t = f32_tensor("w", {2, 3}, rng);
  t.f32.push_back(0);
  EXPECT_TRUE(contains(err({t}), "holds 7 f32 values"));
  EXPECT_TRUE(contains(err({f32_tensor("w", {1}, rng), f16_tensor("w", {1}, rng)}),
                       "tensor w appears twice"));
  EXPECT_TRUE(contains(err({f32_tensor("", {1}, rng)}), "empty name"));
  EXPECT_TRUE(contains(err({f32_tensor("r", {1, 1, 1, 1, 1, 1, 1, 1, 1}, rng)}), "has rank 9"));
  t = f32_tensor("neg", {}, rng);
  t.shape = {-1};
  EXPECT_TRUE(contains(err({t}), "negative dimension"));
  EXPECT_FALSE(fs::exists(p));
}

// Offsets of the payload's length/enum fields (config length, count, and per tensor: name
// length, scheme, bits, rank, dims), found by walking a valid payload.
std::vector<std::pair<size_t, size_t>> field_offsets(const std::string& p) {
  std::vector<std::pair<size_t, size_t>> f;  // (offset, width)
  auto u = [&](size_t at, size_t w) {
    uint64_t v = 0;
    std::memcpy(&v, p.data() + at, w);
    return v;
  };
  size_t at = 0;
  f.push_back({at, 4});
  at += 4 + u(at, 4);
  f.push_back({at, 4});
  const uint64_t count = u(at, 4);
  at += 4;
  for (uint64_t i = 0; i < count; ++i) {
    f.push_back({at, 2});
    at += 2 + u(at, 2);
    const auto scheme = u(at, 1);
    f.push_back({at, 1});
    f.push_back({at + 1, 1});
    f.push_back({at + 2, 1});
    const auto rank = u(at + 2, 1);
    at += 3;
    uint64_t n = 1, rows = 1;
    for (uint64_t d = 0; d < rank; ++d, at += 8) {
      f.push_back({at, 8});
      n *= u(at, 8);
      if (d + 1 < rank) rows *= u(at, 8);
    }
    at += scheme == 0 ? 4 * n : scheme == 1 ? 2 * n : 2 * rows + n;
  }
  EXPECT_EQ(at, p.size());
  return f;
}

TEST_F(Artifact, FuzzEveryInputReadsOrThrowsOneError) {
  const auto start = std::chrono::steady_clock::now();
  std::mt19937_64 rng(20240520);
  const std::string payload = encode_artifact_payload("x", kConfig, sample_tensors(10));
  const std::string file = wrap_artifact_payload(payload, 1);
  const auto fields = field_offsets(payload);
  const uint64_t interesting[] = {0, 1, 2, 7, 8, 9, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000,
                                  0x7FFFFFFF, 0xFFFFFFFF, uint64_t{1} << 32, uint64_t{1} << 62,
                                  uint64_t{INT64_MAX}, ~uint64_t{0}};
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  int inputs = 0, read_back = 0, deep = 0;
  auto run = [&](const std::string& bytes) {
    const std::string msg = outcome(bytes);
    ++inputs;
    if (msg.empty()) {
      ++read_back;
      return;
    }
    ASSERT_TRUE(contains(msg, "fuzz.pgart: ")) << msg;
    ASSERT_EQ(msg.find('\n'), std::string::npos) << msg;
    if (!contains(msg, "checksum") && !contains(msg, "compressed bytes but")) ++deep;
  };
  for (int i = 0; i < 12500; ++i) {
    // 1. bit flips anywhere in the file.
    std::string c = file;
    for (int k = 0, n = 1 + pick(4); k < n; ++k) c[pick(c.size())] ^= 1 << pick(8);
    run(c);
    // 2. truncation, random tail, or random bytes with a valid-looking header.
    c = file.substr(0, pick(file.size() + 1));
    for (int k = 0, n = pick(3) == 0 ? pick(64) : 0; k < n; ++k) c += static_cast<char>(rng());
    if (i % 5 == 0) {
      c = file.substr(0, kArtifactHeaderBytes);
      for (int k = 0, n = pick(256); k < n; ++k) c += static_cast<char>(rng());
      poke<uint64_t>(c, 20, c.size() - kArtifactHeaderBytes);
      fix_checksum(c);
    }
    run(c);
    // 3. corrupted frame or header sizes with the checksum fixed up, to reach zstd.
    c = file;
    if (pick(4) == 0)
      poke<uint64_t>(c, 12 + 8 * pick(2), interesting[pick(std::size(interesting))]);
    for (int k = 0, n = 1 + pick(3); k < n; ++k)
      c[kArtifactHeaderBytes + pick(c.size() - kArtifactHeaderBytes)] = static_cast<char>(rng());
    fix_checksum(c);
    run(c);
    // 4. payload edits under a valid frame and checksum, to reach the payload parser.
    std::string p = payload;
    switch (pick(4)) {
      case 0: {  // a length/enum field set to an interesting or random value
        const auto [at, w] = fields[pick(fields.size())];
        const uint64_t v = pick(2) ? interesting[pick(std::size(interesting))] : rng();
        std::memcpy(p.data() + at, &v, w);
        break;
      }
      case 1: {  // a field nudged by ±1..3
        const auto [at, w] = fields[pick(fields.size())];
        uint64_t v = 0;
        std::memcpy(&v, p.data() + at, w);
        v += static_cast<uint64_t>(static_cast<int64_t>(pick(7)) - 3);
        std::memcpy(p.data() + at, &v, w);
        break;
      }
      case 2:  // random bytes anywhere
        for (int k = 0, n = 1 + pick(4); k < n; ++k) p[pick(p.size())] = static_cast<char>(rng());
        break;
      default:  // truncated, or bytes cut out / inserted in the middle
        if (pick(2)) {
          p.resize(pick(p.size()));
        } else {
          const size_t at = pick(p.size());
          p.insert(at, std::string(pick(9), static_cast<char>(rng())));
          p.erase(pick(p.size()), pick(9));
        }
    }
    run(wrap_artifact_payload(p, 1));
    if (HasFatalFailure()) return;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz: %d inputs, %d read back, %d rejected past the checksum/size checks, %.2f s\n",
              inputs, read_back, deep, secs);
  EXPECT_GE(inputs, 10000);
  EXPECT_GE(deep, 10000);  // the decompressor and payload parser were really exercised
}

// Is bit-packing int6 worth it after zstd? A realistic 1536 × 512 MLP weight: gaussian
// weights, per-row scale max|w|/31, values rounded into [-31, 31]; compressed at level 22
// one value per byte and packed 4 values into 3 bytes.
TEST(ArtifactMeasure, Int6PackingAfterZstd) {
  const size_t rows = 1536, cols = 512;
  std::mt19937_64 rng(6);
  std::normal_distribution<float> g(0.f, 0.02f);
  std::vector<float> w(rows * cols);
  for (float& v : w) v = g(rng);
  std::string bytes(rows * cols, '\0');
  for (size_t r = 0; r < rows; ++r) {
    float m = 0;
    for (size_t c = 0; c < cols; ++c) m = std::max(m, std::fabs(w[r * cols + c]));
    const float scale = m / 31.f;
    for (size_t c = 0; c < cols; ++c)
      bytes[r * cols + c] = static_cast<char>(std::lround(w[r * cols + c] / scale));
  }
  std::string packed;
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint32_t word = 0;
    for (int k = 0; k < 4; ++k) word |= static_cast<uint32_t>(bytes[i + k] + 31) << (6 * k);
    packed.append(reinterpret_cast<const char*>(&word), 3);
  }
  auto zsize = [](const std::string& s) {
    std::string out(ZSTD_compressBound(s.size()), '\0');
    const size_t n = ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 22);
    EXPECT_FALSE(ZSTD_isError(n));
    return n;
  };
  const size_t one_per_byte = zsize(bytes), bit_packed = zsize(packed);
  std::printf("int6 %zux%zu (%zu values): one per byte %zu -> %zu bytes zstd-22 (%.3f bits/value); "
              "bit-packed %zu -> %zu bytes zstd-22 (%.3f bits/value)\n",
              rows, cols, bytes.size(), bytes.size(), one_per_byte,
              8.0 * one_per_byte / bytes.size(), packed.size(), bit_packed,
              8.0 * bit_packed / bytes.size());
  RecordProperty("one_per_byte", static_cast<int>(one_per_byte));
  RecordProperty("bit_packed", static_cast<int>(bit_packed));
  EXPECT_LT(one_per_byte, bytes.size());
}

}  // namespace
