// safetensors (SPEC §5): round trips, the standard byte layout the Python library reads,
// half-precision conversion, and one clear pgolf::Error (never a crash) for every kind of
// broken file.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "support/temp_dir_test.h"

namespace fs = std::filesystem;
using namespace pgolf::io;
using nlohmann::json;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

class Safetensors : public pgolf::test::TempDirTest {
 protected:
  Safetensors() : TempDirTest("pgolf_safetensors") {}

  // A file made byte by byte: length prefix, `header` verbatim, then `data`.
  std::string raw_file(const std::string& header, const std::string& data,
                       const std::string& name = "raw.safetensors") {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << data;
    return p;
  }
};

StFile sample_file() {
  StFile f;
  const std::vector<float> emb = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
  const std::vector<double> gate = {0.1, -1e300, 4.0};
  const float scale = 0.75f;
  f.add_f32("tok_emb.weight", {3, 2}, emb.data());
  f.add_f64("smear.gate", {3}, gate.data());
  f.add_f32("bigram.scale", {}, &scale);
  f.add_f32("empty", {0, 4}, nullptr);
  f.metadata["pgolf_config"] = R"({"vocab_size": 1024, "model_dim": 512})";
  f.metadata["note"] = "ünïcode";
  return f;
}

StTensor half_tensor(DType dtype, const std::vector<uint16_t>& bits) {
  StTensor t{"t", dtype, {static_cast<int64_t>(bits.size())}, {}};
  t.data.resize(2 * bits.size());
  std::memcpy(t.data.data(), bits.data(), t.data.size());
  return t;
}

// ---- round trip and layout --------------------------------------------------------

TEST_F(Safetensors, RoundTripKeepsTensorsOrderAndMetadata) {
  const StFile f = sample_file();
  write_safetensors(path("m.safetensors"), f);
  const StFile g = read_safetensors(path("m.safetensors"));
  EXPECT_EQ(g.metadata, f.metadata);
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    EXPECT_EQ(g.tensors[i].name, f.tensors[i].name);
    EXPECT_EQ(g.tensors[i].dtype, f.tensors[i].dtype);
    EXPECT_EQ(g.tensors[i].shape, f.tensors[i].shape);
    EXPECT_EQ(g.tensors[i].data, f.tensors[i].data);
  }
  EXPECT_EQ(g.find("tok_emb.weight")->to_f32(), f.find("tok_emb.weight")->to_f32());
  EXPECT_EQ(g.find("smear.gate")->to_f64(), (std::vector<double>{0.1, -1e300, 4.0}));
  EXPECT_EQ(g.find("bigram.scale")->to_f64(), std::vector<double>{0.75});
  EXPECT_TRUE(g.find("empty")->to_f32().empty());
  EXPECT_EQ(g.find("absent"), nullptr);
}

TEST_F(Safetensors, WritesTheStandardLayout) {
  write_safetensors(path("m.safetensors"), sample_file());
  const std::string bytes = slurp(path("m.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "header is padded to a multiple of 8 bytes";
  const std::string text = bytes.substr(8, n);
  EXPECT_EQ(text.find_first_not_of(' ', text.rfind('}') + 1), std::string::npos)
      << "padding is spaces";
  const json header = json::parse(text);
  EXPECT_EQ(header["__metadata__"]["pgolf_config"], R"({"vocab_size": 1024, "model_dim": 512})");
  EXPECT_EQ(header["tok_emb.weight"]["dtype"], "F32");
  EXPECT_EQ(header["tok_emb.weight"]["shape"], json::array({3, 2}));
  EXPECT_EQ(header["tok_emb.weight"]["data_offsets"], json::array({0, 24}));
  EXPECT_EQ(header["smear.gate"]["dtype"], "F64");
  EXPECT_EQ(header["smear.gate"]["data_offsets"], json::array({24, 48}));
  EXPECT_EQ(header["bigram.scale"]["shape"], json::array());
  EXPECT_EQ(header["bigram.scale"]["data_offsets"], json::array({48, 52}));
  EXPECT_EQ(header["empty"]["data_offsets"], json::array({52, 52}));
  EXPECT_EQ(bytes.size(), 8 + n + 52);
  float first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.5f);
}

TEST_F(Safetensors, OmitsEmptyMetadata) {
  StFile f;
  const float v = 1;
  f.add_f32("x", {1}, &v);
  write_safetensors(path("m.safetensors"), f);
  const std::string bytes = slurp(path("m.safetensors"));
  EXPECT_FALSE(contains(bytes, "__metadata__"));
  EXPECT_TRUE(read_safetensors(path("m.safetensors")).metadata.empty());
}

TEST_F(Safetensors, ReadsAForeignFileInDataOrder) {
  // As another writer may produce it: keys not in data order, extra padding, 16-bit dtypes.
  const std::string header = R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
                             R"("a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                             R"("__metadata__":{"format":"pt"}})"
                             "        ";
  const std::string data = std::string("\x00\x3c\x00\xc0", 4) + std::string("\x80\x3f\x40\xc0", 4);
  const StFile f = read_safetensors(raw_file(header, data));
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "a");
  EXPECT_EQ(f.tensors[1].name, "b");
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.tensors[0].to_f32(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(f.tensors[1].to_f64(), (std::vector<double>{1.0, -3.0}));
}

// ---- conversion -------------------------------------------------------------------

TEST_F(Safetensors, ConvertsF16IncludingSubnormalsInfAndNan) {
  const StTensor t = half_tensor(DType::F16, {0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff,
                                              0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555});
  const std::vector<float> v = t.to_f32();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 65504.0f);                        // largest finite
  EXPECT_EQ(v[3], std::ldexp(1.0f, -14));           // smallest normal
  EXPECT_EQ(v[4], std::ldexp(1.0f, -24));           // smallest subnormal
  EXPECT_EQ(v[5], std::ldexp(1023.0f, -24));        // largest subnormal
  EXPECT_TRUE(v[6] == 0.0f && std::signbit(v[6]));  // -0
  EXPECT_EQ(v[7], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[8], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[9]));
  EXPECT_EQ(v[10], 0.333251953125f);  // nearest half to 1/3
  EXPECT_EQ(t.to_f64()[4], std::ldexp(1.0, -24));
}

TEST_F(Safetensors, ConvertsBF16IncludingSubnormalsInfAndNan) {
  const StTensor t =
      half_tensor(DType::BF16, {0x3f80, 0xc040, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc0});
  const std::vector<float> v = t.to_f32();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -3.0f);
  EXPECT_EQ(v[2], std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_TRUE(v[3] == 0.0f && std::signbit(v[3]));
  EXPECT_EQ(v[4], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[5], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[6]));
}

TEST_F(Safetensors, F64NarrowsToF32) {
  StFile f;
  const double v[2] = {0.1, 1e300};
  f.add_f64("x", {2}, v);
  const std::vector<float> out = f.tensors[0].to_f32();
  EXPECT_EQ(out[0], 0.1f);
  EXPECT_EQ(out[1], std::numeric_limits<float>::infinity());
}

TEST_F(Safetensors, IntegerDtypesDoNotConvert) {
  StTensor t{"ids", DType::I64, {1}, std::vector<uint8_t>(8)};
  const std::string msg = error_of([&] { t.to_f64(); });
  EXPECT_TRUE(contains(msg, "ids") && contains(msg, "I64")) << msg;
  t.dtype = DType::I32;
  t.data.resize(4);
  EXPECT_THROW(t.to_f32(), pgolf::Error);
}

TEST_F(Safetensors, ReadsIntegerTensorsAsRawBytes) {
  const std::string header = R"({"ids":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  const StFile f = read_safetensors(raw_file(header, std::string("\x01\0\0\0\x02\0\0\0", 8)));
  EXPECT_EQ(f.tensors[0].dtype, DType::I32);
  EXPECT_EQ(f.tensors[0].data.size(), 8u);
}

// ---- writer rejects what it cannot write faithfully -------------------------------

TEST_F(Safetensors, AddingANameTwiceIsAnError) {
  StFile f;
  const float v = 1;
  f.add_f32("x", {1}, &v);
  EXPECT_THROW(f.add_f32("x", {1}, &v), pgolf::Error);
  EXPECT_THROW(f.add_f32("y", {-1}, &v), pgolf::Error);
}

TEST_F(Safetensors, WritingInconsistentTensorsIsAnError) {
  StFile f;
  f.tensors.push_back({"w", DType::F32, {2, 2}, std::vector<uint8_t>(12)});
  const std::string p = path("m.safetensors");
  const std::string msg = error_of([&] { write_safetensors(p, f); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "w") && contains(msg, "16")) << msg;
  f.tensors[0].data.resize(16);
  f.tensors.push_back(f.tensors[0]);
  EXPECT_THROW(write_safetensors(p, f), pgolf::Error);
  EXPECT_FALSE(fs::exists(p));
}

// ---- broken files: always a pgolf::Error naming the file --------------------------

TEST_F(Safetensors, EveryTruncationIsAnError) {
  const std::string full = path("m.safetensors");
  write_safetensors(full, sample_file());
  const std::string bytes = slurp(full);
  for (size_t len = 0; len < bytes.size(); ++len) {
    const std::string p = path("cut.safetensors");
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), len);
    const std::string msg = error_of([&] { read_safetensors(p); });
    EXPECT_TRUE(contains(msg, p)) << "length " << len << ": " << msg;
  }
}

TEST_F(Safetensors, MissingFileIsAnError) {
  const std::string p = path("missing.safetensors");
  const std::string msg = error_of([&] { read_safetensors(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "not found")) << msg;
  EXPECT_THROW(read_safetensors(dir().string()), pgolf::Error);
}

TEST_F(Safetensors, GarbageIsAnError) {
  const std::string p = path("garbage.safetensors");
  std::string junk(4096, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(p, std::ios::binary).write(junk.data(), junk.size());
  const std::string msg = error_of([&] { read_safetensors(p); });
  EXPECT_TRUE(contains(msg, p)) << msg;
}

TEST_F(Safetensors, HeaderLengthBeyondTheFileOrLimitIsAnError) {
  const std::string p = path("long.safetensors");
  const uint64_t too_long = 200;
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(&too_long), 8) << "{}";
  EXPECT_TRUE(contains(error_of([&] { read_safetensors(p); }), "runs past the end"));
  const uint64_t huge = 100'000'001;
  std::ofstream(p, std::ios::binary | std::ios::trunc)
          .write(reinterpret_cast<const char*>(&huge), 8)
      << "{}";
  EXPECT_TRUE(contains(error_of([&] { read_safetensors(p); }), "100 MB"));
}

TEST_F(Safetensors, CorruptJsonIsAnError) {
  const std::string msg = error_of([&] { read_safetensors(raw_file(R"({"x": {"dtype": )", "")); });
  EXPECT_TRUE(contains(msg, "raw.safetensors") && contains(msg, "not valid JSON")) << msg;
  EXPECT_THROW(read_safetensors(raw_file("[1, 2]", "")), pgolf::Error);
  EXPECT_THROW(read_safetensors(raw_file("\xff\xfe{}", "")), pgolf::Error);
}

TEST_F(Safetensors, WrongOffsetsAreAnError) {
  const std::string header =
      R"({"tok_emb.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[0,12]}})";
  const std::string p = raw_file(header, std::string(64, '\0'), "model.safetensors");
  EXPECT_EQ(error_of([&] { read_safetensors(p); }),
            p + ": tensor tok_emb.weight's data_offsets [0, 12] do not match its dtype F32 and "
                "shape [4, 4] (64 bytes)");
  EXPECT_THROW(
      read_safetensors(raw_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                                std::string(8, '\0'))),
      pgolf::Error);
  EXPECT_THROW(read_safetensors(raw_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})",
                                         std::string(8, '\0'))),
               pgolf::Error);
}

TEST_F(Safetensors, OffsetsPastTheDataAreAnError) {
  const std::string header = R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  const std::string msg =
      error_of([&] { read_safetensors(raw_file(header, std::string(12, '\0'))); });
  EXPECT_TRUE(contains(msg, "tensor x") && contains(msg, "12-byte data section")) << msg;
}

TEST_F(Safetensors, OverlappingTensorsAreAnError) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  const std::string msg =
      error_of([&] { read_safetensors(raw_file(header, std::string(12, '\0'))); });
  EXPECT_TRUE(contains(msg, "a [0, 8]") && contains(msg, "b [4, 12]") && contains(msg, "overlap"))
      << msg;
}

TEST_F(Safetensors, UnknownDtypeIsAnErrorNamingIt) {
  const std::string header = R"({"q":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})";
  const std::string msg =
      error_of([&] { read_safetensors(raw_file(header, std::string(2, '\0'))); });
  EXPECT_TRUE(contains(msg, "raw.safetensors") && contains(msg, "tensor q") &&
              contains(msg, "F8_E4M3"))
      << msg;
}

TEST_F(Safetensors, MalformedEntriesAreErrors) {
  const std::string data(16, '\0');
  for (const std::string header : {
           R"({"x":[1,2]})",
           R"({"x":{"shape":[1],"data_offsets":[0,4]}})",
           R"({"x":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})",
           R"({"x":{"dtype":"F32","data_offsets":[0,4]}})",
           R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
           R"({"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})",
           R"({"x":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})",
           R"({"x":{"dtype":"F32","shape":[1]}})",
           R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}})",
           R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
           R"({"__metadata__":{"k":1}})",
           R"({"__metadata__":["k"]})",
       }) {
    const std::string msg = error_of([&] { read_safetensors(raw_file(header, data)); });
    EXPECT_TRUE(contains(msg, "raw.safetensors")) << header << " -> " << msg;
  }
}

}  // namespace
