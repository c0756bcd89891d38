// The `pgolf data` pipeline on small text inputs: the data-directory layout, validation text
// kept out of the tokenizer, --tokenizer, --force, and its errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "data/data_test_support.h"
#include "data/prepare.h"
#include "data/sp_model_spec.h"
#include "data/tokenizer.h"
#include "io/shard.h"
#include "support/temp_dir_test.h"

namespace fs = std::filesystem;
using namespace pgolf;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

const char* const kZhe = "\xd0\xb6";  // Cyrillic ж, in no synthetic text

class Prepare : public test::TempDirTest {
 protected:
  Prepare() : TempDirTest("pgolf_prepare") {}

  // doc211.txt falls in the validation split at fraction 0.05; doc382, doc70 and doc136
  // in training (FNV-1a-64 mod 1000: 49, 50, 500, 999). `extra` is appended to one of them.
  void write_corpus(const std::string& extra_doc = "", const std::string& extra = "") {
    fs::create_directories(dir() / "in");
    uint32_t seed = 10;
    for (const char* name : {"doc211.txt", "doc382.txt", "doc70.txt", "doc136.txt"})
      test::write_text(dir() / "in" / name, test::synthetic_text(1500, seed++) +
                                                (name == extra_doc ? extra : std::string()));
  }

  PrepareOptions options() const {
    PrepareOptions o;
    o.texts = {path("in")};
    o.vocab_size = 300;
    o.out_dir = path("out");
    return o;
  }

  std::string out(const std::string& name) const { return path("out/" + name); }
};

// "ж ж ж ..." in one document: separate words, so each is its own <unk> when unknown.
std::string zhe_words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(" ") + kZhe;
  return s;
}

bool has_piece_with(const Tokenizer& tok, const std::string& text) {
  for (int id = 0; id < tok.vocab_size(); ++id)
    if (tok.piece(id).find(text) != std::string::npos) return true;
  return false;
}

TEST_F(Prepare, WritesTheDataDirectory) {
  write_corpus();
  const PrepareReport r = prepare_data(options());
  EXPECT_EQ(r.val_names, std::vector<std::string>{"doc211.txt"});
  EXPECT_EQ(r.train.documents, 3);
  EXPECT_EQ(r.val.documents, 1);
  EXPECT_EQ(r.tokenizer_source, "trained");
  EXPECT_EQ(r.vocab_size, 300);
  EXPECT_EQ(r.train.shards, std::vector<std::string>{"text_train_000000.bin"});
  EXPECT_EQ(r.val.shards, std::vector<std::string>{"text_val_000000.bin"});
  for (const char* f :
       {"tokenizer.model", "data.json", "text_train_000000.bin", "text_val_000000.bin"})
    EXPECT_TRUE(fs::exists(out(f))) << f;
  EXPECT_EQ(std::distance(fs::directory_iterator(path("out")), fs::directory_iterator()), 4);
  const Tokenizer tok = Tokenizer::load(out("tokenizer.model"));
  const std::vector<uint16_t> val = io::read_shard(out("text_val_000000.bin"));
  ASSERT_EQ(static_cast<int64_t>(val.size()), r.val.tokens);
  EXPECT_EQ(val.front(), tok.bos_id());
  EXPECT_EQ(std::count(val.begin(), val.end(), tok.bos_id()), 1);
  const std::vector<uint16_t> train = io::read_shard(out("text_train_000000.bin"));
  EXPECT_EQ(std::count(train.begin(), train.end(), tok.bos_id()), 3);
}

TEST_F(Prepare, TrainingNeverSeesValidationText) {
  write_corpus("doc211.txt", zhe_words(200));  // the validation document
  const PrepareReport r = prepare_data(options());
  const Tokenizer tok = Tokenizer::load(out("tokenizer.model"));
  EXPECT_FALSE(has_piece_with(tok, kZhe));
  EXPECT_GE(r.val.unk, 200);
  // Control: the same text in a training document is learnt.
  fs::remove_all(dir() / "in");
  write_corpus("doc70.txt", zhe_words(200));
  PrepareOptions o = options();
  o.force = true;
  const PrepareReport r2 = prepare_data(o);
  EXPECT_TRUE(has_piece_with(Tokenizer::load(out("tokenizer.model")), kZhe));
  EXPECT_LT(r2.val.unk, r.val.unk);
}

TEST_F(Prepare, RefusesADirectoryWithShardsUnlessForced) {
  write_corpus();
  fs::create_directories(path("out"));
  io::write_shard(out("old_train_000007.bin"), {1, 2, 3});
  const std::string msg = error_of([&] { prepare_data(options()); });
  EXPECT_TRUE(contains(msg, path("out")) && contains(msg, "old_train_000007.bin") &&
              contains(msg, "--force"))
      << msg;
  EXPECT_FALSE(fs::exists(out("tokenizer.model")));
  PrepareOptions o = options();
  o.force = true;
  prepare_data(o);
  EXPECT_FALSE(fs::exists(out("old_train_000007.bin")));  // a stale shard is not left behind
  EXPECT_TRUE(fs::exists(out("text_train_000000.bin")));
}

TEST_F(Prepare, ExistingTokenizerIsUsedAndCopiedVerbatim) {
  ASSERT_NO_FATAL_FAILURE(test::require_challenge_model("fineweb_1024_bpe.model"));
  write_corpus();
  PrepareOptions o = options();
  o.tokenizer = test::challenge_model("fineweb_1024_bpe.model");
  const PrepareReport r = prepare_data(o);
  EXPECT_EQ(r.tokenizer_source, o.tokenizer);
  EXPECT_EQ(r.vocab_size, 1024);
  EXPECT_EQ(r.tokenizer_seconds, 0.0);
  EXPECT_TRUE(read_sp_model_bytes(out("tokenizer.model")) == read_sp_model_bytes(o.tokenizer));
}

TEST_F(Prepare, VocabularyOutsideTheShardRangeIsAnError) {
  write_corpus();
  for (int vocab : {0, 70000}) {
    PrepareOptions o = options();
    o.vocab_size = vocab;
    const std::string msg = error_of([&] { prepare_data(o); });
    EXPECT_TRUE(contains(msg, "vocabulary size") && contains(msg, std::to_string(vocab))) << msg;
  }
  EXPECT_FALSE(fs::exists(path("out")));  // a failed run leaves nothing behind
}

TEST_F(Prepare, MissingTokenizerIsAnError) {
  write_corpus();
  PrepareOptions o = options();
  o.tokenizer = path("none.model");
  const std::string msg = error_of([&] { prepare_data(o); });
  EXPECT_TRUE(contains(msg, o.tokenizer) && contains(msg, "not found")) << msg;
}

TEST_F(Prepare, OutputPathThatIsAFileIsAnError) {
  write_corpus();
  test::write_text(dir() / "out", "a file");
  const std::string msg = error_of([&] { prepare_data(options()); });
  EXPECT_TRUE(contains(msg, path("out")) && contains(msg, "not a directory")) << msg;
}

}  // namespace
