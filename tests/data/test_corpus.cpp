// Document listing and the validation split: deterministic, by file name only, and every
// way to get the inputs wrong is one clear error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>

#include "data/corpus.h"
#include "data/data_test_support.h"
#include "support/temp_dir_test.h"

namespace fs = std::filesystem;
using namespace pgolf;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

std::vector<std::string> names_of(const std::vector<Document>& docs) {
  std::vector<std::string> names;
  for (const Document& d : docs) names.push_back(d.name);
  return names;
}

// Sets an environment variable for the lifetime of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { old_ ? (void)::setenv(name_, old_->c_str(), 1) : (void)::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Corpus, Fnv1a64KnownValues) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(Corpus, ValSplitThresholdIsRoundedToThousandths) {
  // FNV-1a-64 mod 1000 of these names: doc211.txt 49, doc382.txt 50, doc1969.txt 0,
  // doc136.txt 999.
  EXPECT_TRUE(is_val_document("doc211.txt", 0.05));
  EXPECT_FALSE(is_val_document("doc382.txt", 0.05));
  EXPECT_TRUE(is_val_document("doc382.txt", 0.051));
  EXPECT_TRUE(is_val_document("doc1969.txt", 0.001));
  EXPECT_FALSE(is_val_document("doc1969.txt", 0.0004));  // rounds to 0: nothing is val
  EXPECT_FALSE(is_val_document("doc136.txt", 0.999));
  EXPECT_TRUE(is_val_document("doc136.txt", 0.9996));  // rounds to 1000
}

TEST(Corpus, DefaultCorpusSplitIsPinned) {
  ASSERT_NO_FATAL_FAILURE(test::require_default_corpus());
  const auto docs = list_documents({});
  ASSERT_EQ(docs.size(), 233u);
  EXPECT_EQ(docs.front().name, "1790_george_washington_n.txt");
  EXPECT_TRUE(std::is_sorted(docs.begin(), docs.end(),
                             [](const Document& a, const Document& b) { return a.path < b.path; }));
  const DocumentSplit split = split_documents(docs, 0.05);
  EXPECT_EQ(names_of(split.val),
            (std::vector<std::string>{"1870_ulysses_s_grant_r.txt", "1887_grover_cleveland_d.txt",
                                      "1943_franklin_d_roosevelt_d.txt", "1970_richard_nixon_r.txt",
                                      "1976_gerald_r_ford_r.txt", "1988_ronald_reagan_r.txt",
                                      "1995_william_j_clinton_d.txt"}));
  EXPECT_EQ(split.train.size(), 226u);
}

class CorpusFiles : public test::TempDirTest {
 protected:
  CorpusFiles() : TempDirTest("pgolf_corpus") {}
};

TEST_F(CorpusFiles, MembershipDependsOnTheNameOnly) {
  fs::create_directories(dir() / "a");
  fs::create_directories(dir() / "b");
  for (const char* n : {"doc211.txt", "doc382.txt", "doc70.txt"})
    test::write_text(dir() / "a" / n, "text");
  test::write_text(dir() / "b" / "doc136.txt", "other text");
  test::write_text(dir() / "a" / "notes.md", "not a document");
  const auto all = list_documents({path("a"), path("b")});
  EXPECT_EQ(names_of(all),
            (std::vector<std::string>{"doc211.txt", "doc382.txt", "doc70.txt", "doc136.txt"}));
  const DocumentSplit split = split_documents(all, 0.05);
  EXPECT_EQ(names_of(split.val), std::vector<std::string>{"doc211.txt"});
  // Fewer other documents, given file by file in another order: the same membership.
  const auto some = list_documents({path("b/doc136.txt"), path("a/doc211.txt")});
  EXPECT_EQ(names_of(split_documents(some, 0.05).val), std::vector<std::string>{"doc211.txt"});
}

TEST_F(CorpusFiles, EmptyValidationSplitIsAnError) {
  test::write_text(dir() / "doc382.txt", "text");
  test::write_text(dir() / "doc70.txt", "text");
  const std::string msg =
      error_of([&] { split_documents(list_documents({dir().string()}), 0.05); });
  EXPECT_TRUE(contains(msg, "validation split is empty") && contains(msg, "--val-fraction")) << msg;
}

TEST_F(CorpusFiles, EmptyTrainingSplitIsAnError) {
  test::write_text(dir() / "doc211.txt", "text");
  const std::string msg =
      error_of([&] { split_documents(list_documents({dir().string()}), 0.05); });
  EXPECT_TRUE(contains(msg, "training split is empty")) << msg;
}

TEST_F(CorpusFiles, ValFractionOutsideTheOpenUnitIntervalIsAnError) {
  test::write_text(dir() / "doc211.txt", "text");
  const auto docs = list_documents({dir().string()});
  for (double f : {0.0, 1.0, -0.5, 2.0}) {
    const std::string msg = error_of([&] { split_documents(docs, f); });
    EXPECT_TRUE(contains(msg, "validation fraction")) << msg;
  }
}

TEST_F(CorpusFiles, MissingInputIsAnError) {
  const std::string p = path("nowhere.txt");
  const std::string msg = error_of([&] { list_documents({p}); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "not found")) << msg;
}

TEST_F(CorpusFiles, DirectoryWithoutTextFilesIsAnError) {
  test::write_text(dir() / "readme.md", "no documents here");
  const std::string msg = error_of([&] { list_documents({dir().string()}); });
  EXPECT_TRUE(contains(msg, dir().string()) && contains(msg, "no .txt files")) << msg;
}

TEST_F(CorpusFiles, SameDocumentTwiceIsAnError) {
  test::write_text(dir() / "doc70.txt", "text");
  const std::string msg = error_of([&] { list_documents({dir().string(), path("doc70.txt")}); });
  EXPECT_TRUE(contains(msg, "doc70.txt") && contains(msg, "twice")) << msg;
}

TEST_F(CorpusFiles, UnreadableDocumentIsAnError) {
  const Document d{path("gone.txt"), "gone.txt"};
  const std::string msg = error_of([&] { read_document(d); });
  EXPECT_TRUE(contains(msg, d.path) && contains(msg, "cannot open")) << msg;
}

TEST_F(CorpusFiles, MissingDefaultCorpusSaysHowToInstallIt) {
  const ScopedEnv env("PGOLF_CORPUS_DIR", path("not-installed"));
  EXPECT_EQ(default_corpus_dir(), path("not-installed"));
  const std::string msg = error_of([&] { list_documents({}); });
  EXPECT_TRUE(contains(msg, path("not-installed")) && contains(msg, "bash scripts/install-deps.sh"))
      << msg;
}

}  // namespace
