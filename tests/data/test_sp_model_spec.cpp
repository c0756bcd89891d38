// The .model settings reader: the embedded challenge settings equal what the challenge's
// model files say, the wire format is decoded field by field, and broken files are errors.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "data/data_test_support.h"
#include "data/sp_model_spec.h"
#include "support/temp_dir_test.h"

using namespace pgolf;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

// Protobuf wire encoding, written out independently of the reader under test.
std::string varint(uint64_t v) {
  std::string out;
  do {
    out += static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return out;
}
std::string key(int field, int wire_type) { return varint(uint64_t(field) << 3 | wire_type); }
std::string int_field(int field, int64_t v) { return key(field, 0) + varint(uint64_t(v)); }
std::string bytes_field(int field, const std::string& b) {
  return key(field, 2) + varint(b.size()) + b;
}
std::string float_field(int field, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  std::string out = key(field, 5);
  for (int i = 0; i < 4; ++i) out += static_cast<char>(u >> (8 * i));
  return out;
}

TEST(SpModelSpec, ChallengeSettingsAreThoseOfFineweb1024) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  const SpModelSpec spec = read_sp_model_spec(test::challenge_model("fineweb_1024_bpe.model"));
  EXPECT_TRUE(spec.settings == challenge_tokenizer_settings());
  // Spelled out too, so a wrong reader cannot agree with wrong constants unnoticed; the
  // values are what python3-sentencepiece's protobuf classes print for the file.
  const SpTrainerSettings& t = spec.settings.trainer;
  EXPECT_EQ(t.model_type, SpModelType::kBpe);
  EXPECT_EQ(t.vocab_size, 1024);
  EXPECT_EQ(t.character_coverage, 0.999f);
  EXPECT_TRUE(t.split_digits);
  EXPECT_FALSE(t.byte_fallback);
  EXPECT_FALSE(t.hard_vocab_limit);
  EXPECT_EQ(t.max_sentence_length, 4192);
  EXPECT_EQ(t.max_sentencepiece_length, 16);
  EXPECT_EQ(t.unk_id, 3);
  EXPECT_EQ(t.bos_id, 1);
  EXPECT_EQ(t.eos_id, 2);
  EXPECT_EQ(t.pad_id, 0);
  const SpNormalizerSettings& n = spec.settings.normalizer;
  EXPECT_EQ(n.name, "nmt_nfkc");
  EXPECT_FALSE(n.add_dummy_prefix);
  EXPECT_TRUE(n.remove_extra_whitespaces);
  EXPECT_TRUE(n.escape_whitespaces);
  EXPECT_EQ(spec.precompiled_charsmap.size(), 240007u);
}

TEST(SpModelSpec, Fineweb8192DiffersOnlyInVocabAndByteFallback) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_8192_bpe.model"));
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  const SpModelSpec big = read_sp_model_spec(test::challenge_model("fineweb_8192_bpe.model"));
  const SpModelSpec small = read_sp_model_spec(test::challenge_model("fineweb_1024_bpe.model"));
  SpSettings expected = challenge_tokenizer_settings();
  expected.trainer.vocab_size = 8192;
  expected.trainer.byte_fallback = true;
  EXPECT_TRUE(big.settings == expected);
  EXPECT_EQ(big.precompiled_charsmap, small.precompiled_charsmap);
}

TEST(SpModelSpec, DecodesEachWireTypeAndKeepsDefaultsForAbsentFields) {
  const std::string trainer = int_field(3, 2) + int_field(4, 300) + float_field(10, 1.0f) +
                              int_field(43, -1) + int_field(35, 1) +
                              bytes_field(99, "a field the reader does not know") + key(98, 1) +
                              std::string(8, '\x7f');  // an unknown fixed64
  const std::string normalizer =
      bytes_field(1, "identity") + bytes_field(2, std::string("\0\1\2", 3)) + int_field(3, 0);
  const std::string model =
      bytes_field(1, "a piece") + bytes_field(2, trainer) + bytes_field(3, normalizer);
  const SpModelSpec s = parse_sp_model_spec(model, "hand-built");
  EXPECT_EQ(s.settings.trainer.model_type, SpModelType::kBpe);
  EXPECT_EQ(s.settings.trainer.vocab_size, 300);
  EXPECT_EQ(s.settings.trainer.character_coverage, 1.0f);
  EXPECT_EQ(s.settings.trainer.pad_id, -1);  // a 10-byte varint
  EXPECT_TRUE(s.settings.trainer.byte_fallback);
  EXPECT_EQ(s.settings.normalizer.name, "identity");
  EXPECT_EQ(s.precompiled_charsmap, std::string("\0\1\2", 3));
  EXPECT_FALSE(s.settings.normalizer.add_dummy_prefix);
  // Absent: the proto defaults.
  EXPECT_EQ(s.settings.trainer.unk_id, 0);
  EXPECT_EQ(s.settings.trainer.max_sentence_length, 4192);
  EXPECT_TRUE(s.settings.trainer.split_by_whitespace);
  EXPECT_FALSE(s.settings.trainer.split_digits);
  EXPECT_TRUE(s.settings.normalizer.remove_extra_whitespaces);
}

class SpModelSpecErrors : public test::TempDirTest {
 protected:
  SpModelSpecErrors() : TempDirTest("pgolf_spec") {}
};

TEST_F(SpModelSpecErrors, MissingFile) {
  const std::string p = path("missing.model");
  const std::string msg = error_of([&] { read_sp_model_spec(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "not found")) << msg;
}

TEST_F(SpModelSpecErrors, TruncatedModel) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  std::ifstream in(test::challenge_model("fineweb_1024_bpe.model"), std::ios::binary);
  std::string head(1000, '\0');
  in.read(head.data(), 1000);
  const std::string p = path("truncated.model");
  std::ofstream(p, std::ios::binary) << head;
  const std::string msg = error_of([&] { read_sp_model_spec(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "not a valid SentencePiece model")) << msg;
}

TEST_F(SpModelSpecErrors, TextFileIsNotAModel) {
  const std::string p = path("notes.model");
  std::ofstream(p, std::ios::binary) << "just some text\n";
  const std::string msg = error_of([&] { read_sp_model_spec(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "SentencePiece model")) << msg;
}

TEST_F(SpModelSpecErrors, WrongWireTypeForAKnownField) {
  const std::string model = bytes_field(2, bytes_field(4, "1024"));  // vocab_size as bytes
  const std::string msg = error_of([&] { parse_sp_model_spec(model, "odd.model"); });
  EXPECT_TRUE(contains(msg, "odd.model") && contains(msg, "field 4")) << msg;
}

}  // namespace
