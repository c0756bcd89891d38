// The bpb byte tables (SPEC §4) on hand-picked pieces of the challenge's tokenizers, and
// count_bytes on short texts whose byte count is known.
#include <gtest/gtest.h>

#include "data/data_test_support.h"
#include "data/tokenizer.h"
#include "eval/byte_luts.h"
#include "support/temp_dir_test.h"

using namespace pgolf;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

int id_of(const Tokenizer& tok, const std::string& piece) {
  for (int id = 0; id < tok.vocab_size(); ++id)
    if (tok.piece(id) == piece) return id;
  ADD_FAILURE() << "no piece " << piece;
  return 0;
}

struct Entry {
  int base_bytes;
  bool leading_space, boundary;
};

Entry entry(const ByteLuts& l, int id) {
  return {l.base_bytes[id], l.has_leading_space[id] != 0, l.is_boundary[id] != 0};
}

void expect_entry(const ByteLuts& l, int id, Entry want, const std::string& what) {
  const Entry got = entry(l, id);
  EXPECT_EQ(got.base_bytes, want.base_bytes) << what;
  EXPECT_EQ(got.leading_space, want.leading_space) << what;
  EXPECT_EQ(got.boundary, want.boundary) << what;
}

// Bytes the tables give to a document encoded as BOS + its tokens.
double document_bytes(const Tokenizer& tok, const ByteLuts& l, const std::string& text) {
  std::vector<int32_t> ids = {tok.bos_id()};
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  return count_bytes(l, ids.data(), ids.data() + 1, static_cast<int64_t>(ids.size()) - 1);
}

TEST(ByteLuts, Fineweb1024Pieces) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  const Tokenizer tok = Tokenizer::load(test::challenge_model("fineweb_1024_bpe.model"));
  const ByteLuts l = build_byte_luts(tok, tok.vocab_size());
  ASSERT_EQ(l.base_bytes.size(), 1024u);
  for (const char* control : {"<pad>", "<s>", "</s>"})
    expect_entry(l, id_of(tok, control), {0, false, true}, control);
  expect_entry(l, id_of(tok, "<unk>"), {0, false, true}, "<unk>");
  expect_entry(l, id_of(tok, "\xe2\x96\x81t"), {1, true, false}, "U+2581 t");
  expect_entry(l, id_of(tok, "in"), {2, false, false}, "in");
  expect_entry(l, id_of(tok, "\xe2\x80\x94"), {3, false, false}, "em dash (3 UTF-8 bytes)");
  expect_entry(l, id_of(tok, "\xe2\x96\x81"), {0, true, false}, "a lone U+2581");
}

TEST(ByteLuts, Fineweb8192BytePieces) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_8192_bpe.model"));
  const Tokenizer tok = Tokenizer::load(test::challenge_model("fineweb_8192_bpe.model"));
  const ByteLuts l = build_byte_luts(tok, tok.vocab_size());
  expect_entry(l, id_of(tok, "<0xC3>"), {1, false, false}, "<0xC3>");
  expect_entry(l, id_of(tok, "<0x00>"), {1, false, false}, "<0x00>");
  expect_entry(l, id_of(tok, "\xe2\x96\x81\xe2\x80\x94"), {3, true, false}, "U+2581 em dash");
  // A character outside the vocabulary is spelled in bytes: é = C3 A9, 2 bytes, no <unk>.
  EXPECT_EQ(document_bytes(tok, l, "caf\xc3\xa9 au lait"), 13.0);
}

TEST(ByteLuts, TableCoversTheModelVocabWithBoundariesOfZeroBytes) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  const Tokenizer tok = Tokenizer::load(test::challenge_model("fineweb_1024_bpe.model"));
  const ByteLuts wide = build_byte_luts(tok, 1100);
  ASSERT_EQ(wide.base_bytes.size(), 1100u);
  ASSERT_EQ(wide.has_leading_space.size(), 1100u);
  ASSERT_EQ(wide.is_boundary.size(), 1100u);
  for (int id = 1024; id < 1100; ++id) expect_entry(wide, id, {0, false, true}, "spare row");
  EXPECT_EQ(build_byte_luts(tok, 512).base_bytes.size(), 1024u);
}

TEST(ByteLuts, SpacesCountExceptAfterABoundary) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  const Tokenizer tok = Tokenizer::load(test::challenge_model("fineweb_1024_bpe.model"));
  const ByteLuts l = build_byte_luts(tok, tok.vocab_size());
  // Whitespace runs collapse and leading/trailing whitespace goes: "Hello world".
  EXPECT_EQ(document_bytes(tok, l, "  Hello   world \n"), 11.0);
  // ° (U+00B0) is not in this vocabulary: <unk>, worth 0 bytes, and a boundary, so the space
  // after it is not counted either: only "x " and "z" count.
  const std::vector<int32_t> ids = tok.encode("x \xc2\xb0 z");
  EXPECT_NE(std::find(ids.begin(), ids.end(), tok.unk_id()), ids.end());
  EXPECT_EQ(document_bytes(tok, l, "x \xc2\xb0 z"), 3.0);
}

TEST(ByteLuts, IdOutsideTheTablesIsAnError) {
  ByteLuts l;
  l.base_bytes.assign(4, 1);
  l.has_leading_space.assign(4, 0);
  l.is_boundary.assign(4, 0);
  const int32_t prev[] = {0, 1}, tgt[] = {2, 4};
  EXPECT_EQ(count_bytes(l, prev, tgt, 1), 1.0);
  const std::string msg = error_of([&] { count_bytes(l, prev, tgt, 2); });
  EXPECT_TRUE(contains(msg, "token id 4") && contains(msg, "4 ids")) << msg;
}

}  // namespace
