// pgolf::Tokenizer: loading (and its errors), SentencePiece's decode convention that the
// byte-count proof relies on, the normalised text, training sentences and training.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "data/data_test_support.h"
#include "data/sp_model_spec.h"
#include "data/tokenizer.h"
#include "support/temp_dir_test.h"

using namespace pgolf;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

const char* const kSpace = "\xe2\x96\x81";  // U+2581

std::string without_whitespace(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\n' && c != '\t' && c != '\r') out += c;
  return out;
}

TEST(TrainingSentences, CutsAfterSentenceEndsAndPacksUpToTheLimit) {
  EXPECT_EQ(training_sentences("One. Two three. Four", 10),
            (std::vector<std::string_view>{"One.", "Two three.", "Four"}));
  EXPECT_EQ(training_sentences("  short document \n", 100),
            std::vector<std::string_view>{"short document"});
  EXPECT_TRUE(training_sentences(" \n ", 100).empty());
}

TEST(TrainingSentences, FallsBackToWhitespaceThenToCharacterBoundaries) {
  EXPECT_EQ(training_sentences("alpha beta gamma delta", 11),
            (std::vector<std::string_view>{"alpha beta", "gamma delta"}));
  // A 10-byte word of 2-byte characters, cut at most 5 bytes apart: never inside a character.
  EXPECT_EQ(training_sentences("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5),
            (std::vector<std::string_view>{"\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9", "\xc3\xa9"}));
}

TEST(TrainingSentences, KeepEveryNonSpaceByteWithinTheLimit) {
  const std::string doc = test::synthetic_text(5000, 7);
  const auto pieces = training_sentences(doc, 300);
  std::string joined;
  for (std::string_view p : pieces) {
    EXPECT_LE(p.size(), 300u);
    EXPECT_FALSE(p.empty());
    EXPECT_NE(p.front(), ' ');
    EXPECT_NE(p.back(), ' ');
    joined += p;
  }
  EXPECT_EQ(without_whitespace(joined), without_whitespace(doc));
  // Packed: pieces are long (the synthetic sentences are about 9 words).
  EXPECT_LT(pieces.size(), doc.size() / 200);
}

class TokenizerFiles : public test::TempDirTest {
 protected:
  TokenizerFiles() : TempDirTest("pgolf_tokenizer") {}
};

TEST_F(TokenizerFiles, MissingModelIsAnError) {
  const std::string p = path("missing.model");
  const std::string msg = error_of([&] { Tokenizer::load(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "not found")) << msg;
}

TEST_F(TokenizerFiles, ModelSentencePieceCannotLoadIsAnError) {
  // Well-formed protobuf with a trainer_spec, but no pieces: SentencePiece refuses it.
  const std::string p = path("empty.model");
  std::ofstream(p, std::ios::binary) << std::string("\x12\x02\x20\x08", 4);
  const std::string msg = error_of([&] { Tokenizer::load(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "SentencePiece cannot load")) << msg;
}

TEST_F(TokenizerFiles, TextFileIsNotAModel) {
  const std::string p = path("vocab.txt");
  std::ofstream(p) << "hello\t0\n";
  const std::string msg = error_of([&] { Tokenizer::load(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "SentencePiece model")) << msg;
}

// What the byte-count proof (test_default_corpus.cpp) relies on: decoding a run of tokens
// drops the U+2581 of its first piece (SentencePiece strips leading whitespace when the model
// removes extra whitespace, even without a dummy prefix) and turns every other U+2581 into
// one space; <unk> decodes to " ⁇ ".
TEST(Tokenizer, DecodeConvention) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  const Tokenizer tok = Tokenizer::load(test::challenge_model("fineweb_1024_bpe.model"));
  const std::vector<int32_t> ids = tok.encode("a the");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(tok.piece(ids[1]), std::string(kSpace) + "the");
  EXPECT_EQ(tok.decode(ids), "a the");
  EXPECT_EQ(tok.decode({ids[1]}), "the");
  EXPECT_EQ(tok.decode({tok.unk_id()}), " \xe2\x81\x87 ");
  EXPECT_EQ(tok.decode({}), "");
}

TEST(Tokenizer, NormalizedTextIsWhatThePiecesSpell) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_8192_bpe.model"));
  const std::string text = "  Caf\xc3\xa9   \xef\xbd\x99 \xc2\xb0\n";  // fullwidth y: NFKC -> y
  const std::string normalized = "Caf\xc3\xa9 y \xc2\xb0";
  for (const char* name : {"fineweb_1024_bpe.model", "fineweb_8192_bpe.model"}) {
    const Tokenizer tok = Tokenizer::load(test::challenge_model(name));
    const Encoding e = tok.encode_normalized(text);
    EXPECT_EQ(e.normalized, normalized) << name;
    EXPECT_EQ(e.ids, tok.encode(text)) << name;
  }
}

// The normaliser a trained model carries is the one SentencePiece builds in for "nmt_nfkc";
// Debian's SentencePiece (0.1.97) compiled it from older Unicode data than the challenge's
// tokenizers were, so the two differ on characters whose NFKC mappings came with Unicode
// 14 (U+A7F2..A7F4, U+10781..107BA, U+1E030..1E06D) and 16 (U+1CCD6..1CCF9), all of which the
// challenge's normaliser maps and ours leaves as they are. Every other code point up to
// U+2FFFF (beyond it only CJK and unassigned planes) normalises alike.
TEST(Tokenizer, NormaliserIsTheChallengesUpToNewerUnicode) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  const Tokenizer challenge = Tokenizer::load(test::challenge_model("fineweb_1024_bpe.model"));
  SpSettings s = challenge_tokenizer_settings();
  s.trainer.vocab_size = 100;
  const Tokenizer own =
      Tokenizer::from_bytes(train_tokenizer({test::synthetic_text(500, 5)}, s), "trained");
  const auto utf8 = [](uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return out;
  };
  const auto newer_unicode = [](uint32_t cp) {
    return (cp >= 0xa7f2 && cp <= 0xa7f4) || (cp >= 0x10781 && cp <= 0x107ba) ||
           (cp >= 0x1ccd6 && cp <= 0x1ccf9) || (cp >= 0x1e030 && cp <= 0x1e06d);
  };
  int differing = 0, expected = 0;
  for (uint32_t cp = 0; cp < 0x30000; ++cp) {
    if (cp >= 0xd800 && cp < 0xe000) continue;  // surrogates are not characters
    std::string text = "x";                     // between letters, so no whitespace rule applies
    text += utf8(cp);
    text += 'x';
    const bool same =
        own.encode_normalized(text).normalized == challenge.encode_normalized(text).normalized;
    differing += !same;
    if (newer_unicode(cp))
      expected += !same;
    else
      EXPECT_TRUE(same) << "U+" << std::hex << cp;
  }
  EXPECT_EQ(differing, expected);
  EXPECT_EQ(expected, 157);  // the four ranges above, less the unassigned U+10786 and U+107B1
}

TEST(Tokenizer, TrainsWithTheGivenSettings) {
  SpSettings s = challenge_tokenizer_settings();
  s.trainer.vocab_size = 200;
  const std::vector<std::string> docs = {test::synthetic_text(3000, 1),
                                         test::synthetic_text(3000, 2)};
  const std::string model = train_tokenizer(docs, s);
  EXPECT_EQ(model, train_tokenizer(docs, s)) << "training is not deterministic";
  const Tokenizer tok = Tokenizer::from_bytes(model, "trained");
  EXPECT_EQ(tok.vocab_size(), 200);
  EXPECT_TRUE(tok.spec().settings == s);
  const std::vector<int32_t> ids = tok.encode("The nation and the union.");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.unk_id()), 0);
  EXPECT_EQ(tok.decode(ids), "The nation and the union.");
}

TEST(Tokenizer, ByteFallbackMakesEveryCharacterEncodable) {
  SpSettings s = challenge_tokenizer_settings();
  s.trainer.vocab_size = 400;
  s.trainer.byte_fallback = true;
  const Tokenizer tok =
      Tokenizer::from_bytes(train_tokenizer({test::synthetic_text(3000, 3)}, s), "trained");
  EXPECT_TRUE(tok.spec().settings.trainer.byte_fallback);
  const std::string text = "The \xd0\x96 union \xe6\x97\xa5\xe6\x9c\xac peace";  // Ж, 日本
  const Encoding e = tok.encode_normalized(text);
  EXPECT_EQ(std::count(e.ids.begin(), e.ids.end(), tok.unk_id()), 0);
  EXPECT_TRUE(std::any_of(e.ids.begin(), e.ids.end(), [&](int id) { return tok.is_byte(id); }));
  EXPECT_EQ(tok.decode(e.ids), text);
  EXPECT_EQ(e.normalized, text);
}

TEST(Tokenizer, TrainingWithATooSmallVocabularyIsAnError) {
  SpSettings s = challenge_tokenizer_settings();
  s.trainer.vocab_size = 5;
  s.trainer.hard_vocab_limit = true;
  const std::string msg = error_of([&] { train_tokenizer({test::synthetic_text(500, 4)}, s); });
  EXPECT_TRUE(contains(msg, "training a SentencePiece tokenizer")) << msg;
}

}  // namespace
