// `pgolf data` on the default corpus, and the proof that the bpb byte tables (SPEC §4) count
// exactly the bytes of the text, for its own tokenizer and the challenge's two.
//
// The exact statement: split the validation token stream at boundary tokens (BOS, <unk>) and
// decode each maximal run of other tokens on its own; the UTF-8 lengths of those decodes sum
// to the tables' byte total. It holds because decoding a run drops the U+2581 of its first
// piece (as the tables drop the space of a token after a boundary) and spells every other
// U+2581 as one space (as the tables count it), given that no piece holds U+2581 past its
// first character (checked) and the normalised text never holds two spaces in a row (the
// normaliser removes extra whitespace), which would let the decoder strip a second one.
// With byte fallback there is no <unk>, and the total is the whole normalised text.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "data/data_test_support.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "eval/byte_luts.h"
#include "io/shard.h"
#include "support/temp_dir_test.h"

using namespace pgolf;

namespace {

std::vector<std::string> read_all(const std::vector<Document>& docs) {
  std::vector<std::string> texts;
  for (const Document& d : docs) texts.push_back(read_document(d));
  return texts;
}

std::vector<int32_t> read_tokens(const std::string& shard) {
  const std::vector<uint16_t> t = io::read_shard(shard);
  return {t.begin(), t.end()};
}

struct ByteTotals {
  double table = 0;     // count_bytes over every target of the stream
  int64_t decoded = 0;  // Σ UTF-8 bytes of the decoded runs between boundaries
  int64_t unk = 0;
};

ByteTotals byte_totals(const Tokenizer& tok, const std::vector<int32_t>& stream) {
  const ByteLuts luts = build_byte_luts(tok, tok.vocab_size());
  ByteTotals t;
  t.table =
      count_bytes(luts, stream.data(), stream.data() + 1, static_cast<int64_t>(stream.size()) - 1);
  std::vector<int32_t> run;
  const auto flush = [&] {
    t.decoded += static_cast<int64_t>(tok.decode(run).size());
    run.clear();
  };
  for (size_t i = 1; i < stream.size(); ++i) {
    if (luts.is_boundary[stream[i]]) {
      flush();
      t.unk += stream[i] == tok.unk_id();
    } else {
      run.push_back(stream[i]);
    }
  }
  flush();
  return t;
}

// BOS + tokens of each document, as the shards hold them.
std::vector<int32_t> token_stream(const Tokenizer& tok, const std::vector<std::string>& texts,
                                  int64_t* normalized_bytes) {
  std::vector<int32_t> stream;
  *normalized_bytes = 0;
  for (const std::string& text : texts) {
    const Encoding e = tok.encode_normalized(text);
    stream.push_back(tok.bos_id());
    stream.insert(stream.end(), e.ids.begin(), e.ids.end());
    *normalized_bytes += static_cast<int64_t>(e.normalized.size());
  }
  return stream;
}

// UTF-8 bytes of the validation split's normalised text (7 addresses).
constexpr int64_t kValNormalizedBytes = 243779;

void expect_no_inner_space_symbol(const Tokenizer& tok) {
  for (int id = 0; id < tok.vocab_size(); ++id)
    EXPECT_EQ(tok.piece(id).find("\xe2\x96\x81", 1), std::string::npos)
        << "piece " << id << " holds U+2581 past its start";
}

// The texts of the default corpus, split at the default validation fraction.
struct DefaultSplit {
  std::vector<std::string> train, val;
};

DefaultSplit read_default_split() {
  const DocumentSplit split = split_documents(list_documents({}), PrepareOptions{}.val_fraction);
  return {read_all(split.train), read_all(split.val)};
}

// The byte-count statement for `tok` on the validation split; prints the figures.
void check_val_bytes(const Tokenizer& tok, const std::string& label,
                     const std::vector<std::string>& val_texts) {
  expect_no_inner_space_symbol(tok);
  int64_t normalized = 0;
  const std::vector<int32_t> stream = token_stream(tok, val_texts, &normalized);
  const ByteTotals t = byte_totals(tok, stream);
  EXPECT_EQ(t.table, static_cast<double>(t.decoded)) << label;
  // Every tokenizer here normalises the corpus alike (the same rules for all its characters).
  EXPECT_EQ(normalized, kValNormalizedBytes) << label;
  if (t.unk == 0)
    EXPECT_EQ(t.table, static_cast<double>(normalized)) << label;
  else
    EXPECT_LT(t.table, static_cast<double>(normalized)) << label;
  std::printf(
      "[ val bytes ] %-22s tokens %lld  table bytes %.0f  decoded %lld  normalised %lld"
      "  <unk> %lld\n",
      label.c_str(), (long long)stream.size(), t.table, (long long)t.decoded, (long long)normalized,
      (long long)t.unk);
}

TEST(DefaultCorpusBytes, OwnTokenizer) {
  ASSERT_NO_FATAL_FAILURE(test::require_default_corpus());
  const DefaultSplit split = read_default_split();
  const Tokenizer tok = Tokenizer::from_bytes(
      train_tokenizer(split.train, challenge_tokenizer_settings()), "trained");
  check_val_bytes(tok, "own (trained, 1024)", split.val);
}

TEST(DefaultCorpusBytes, Fineweb1024) {
  ASSERT_NO_FATAL_FAILURE(test::require_default_corpus());
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  check_val_bytes(Tokenizer::load(test::challenge_model("fineweb_1024_bpe.model")),
                  "fineweb_1024_bpe.model", read_default_split().val);
}

TEST(DefaultCorpusBytes, Fineweb8192) {
  ASSERT_NO_FATAL_FAILURE(test::require_default_corpus());
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_8192_bpe.model"));
  check_val_bytes(Tokenizer::load(test::challenge_model("fineweb_8192_bpe.model")),
                  "fineweb_8192_bpe.model", read_default_split().val);
}

class DefaultCorpusData : public test::TempDirTest {
 protected:
  DefaultCorpusData() : TempDirTest("pgolf_default_corpus") {}
};

// One `pgolf data` run on the default corpus (checks grouped in one test, as the run takes
// most of its time): shards, counts, and the tokenizer it trained.
TEST_F(DefaultCorpusData, WritesTheDataDirectory) {
  ASSERT_NO_FATAL_FAILURE(test::require_default_corpus());
  PrepareOptions o;
  o.out_dir = path("sotu");
  const PrepareReport r = prepare_data(o);
  const DefaultSplit split = read_default_split();
  const std::string model = path("sotu/tokenizer.model");
  const Tokenizer tok = Tokenizer::load(model);

  // The tokenizer: the challenge's settings, and trained on exactly the training documents
  // (training again on them gives the same bytes, so training is also deterministic).
  EXPECT_TRUE(read_sp_model_spec(model).settings == challenge_tokenizer_settings());
  EXPECT_TRUE(read_sp_model_bytes(model) ==
              train_tokenizer(split.train, challenge_tokenizer_settings()));

  // Shards: every document as BOS + its tokens, in order.
  ASSERT_EQ(r.train.shards, std::vector<std::string>{"sotu_train_000000.bin"});
  ASSERT_EQ(r.val.shards, std::vector<std::string>{"sotu_val_000000.bin"});
  const std::vector<int32_t> train = read_tokens(path("sotu/sotu_train_000000.bin"));
  ASSERT_FALSE(train.empty());
  EXPECT_EQ(train.front(), tok.bos_id());
  EXPECT_EQ(std::count(train.begin(), train.end(), tok.bos_id()),
            static_cast<int64_t>(split.train.size()));
  EXPECT_EQ(static_cast<int64_t>(train.size()), r.train.tokens);
  EXPECT_EQ(std::count(train.begin(), train.end(), tok.unk_id()), r.train.unk);
  int64_t normalized = 0;
  const std::vector<int32_t> val = token_stream(tok, split.val, &normalized);
  EXPECT_EQ(read_tokens(path("sotu/sotu_val_000000.bin")), val);
  EXPECT_EQ(static_cast<int64_t>(val.size()), r.val.tokens);
  EXPECT_EQ(normalized, r.val.bytes);
  EXPECT_EQ(std::count(val.begin(), val.end(), tok.unk_id()), r.val.unk);

  // data.json.
  std::ifstream in(path("sotu/data.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["vocab_size"], 1024);
  EXPECT_EQ(j["byte_fallback"], false);
  EXPECT_EQ(j["tokenizer"], "tokenizer.model");
  EXPECT_EQ(j["tokenizer_source"], "trained");
  EXPECT_EQ(j["train"]["documents"], 226);
  EXPECT_EQ(j["val"]["documents"], 7);
  EXPECT_EQ(j["val_documents"], r.val_names);
  for (const auto& [name, s] : {std::pair{"train", r.train}, std::pair{"val", r.val}}) {
    EXPECT_EQ(j[name]["tokens"], s.tokens) << name;
    EXPECT_EQ(j[name]["bytes"], s.bytes) << name;
    EXPECT_EQ(j[name]["unk"], s.unk) << name;
    EXPECT_EQ(j[name]["shards"], s.shards) << name;
  }
  std::printf(
      "[ sotu      ] train %lld tokens, %lld bytes, %lld <unk>; val %lld tokens, "
      "%lld bytes, %lld <unk>; tokenizer trained in %.1f s, all in %.1f s\n",
      (long long)r.train.tokens, (long long)r.train.bytes, (long long)r.train.unk,
      (long long)r.val.tokens, (long long)r.val.bytes, (long long)r.val.unk, r.tokenizer_seconds,
      r.seconds);
}

}  // namespace
