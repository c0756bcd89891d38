// What the data tests need from outside the build: the default corpus (installed by
// scripts/install-deps.sh) and the challenge's tokenizers in ../shared/data. A missing one
// fails the test with how to get it; it never skips, since a skipped comparison proves nothing.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/corpus.h"

namespace pgolf::test {

// The challenge's tokenizer `name` (fineweb_1024_bpe.model, fineweb_8192_bpe.model).
inline std::string challenge_model(const std::string& name) {
  return std::string(PGOLF_SOURCE_DIR) + "/../shared/data/" + name;
}

// Fatal failure unless `path` exists; use as ASSERT_NO_FATAL_FAILURE(require_file(...)).
inline void require_file(const std::string& path, const std::string& how) {
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: " << how;
}

inline void require_challenge_model(const std::string& name) {
  require_file(challenge_model(name),
               "the challenge's tokenizers are expected in ../shared/data next to the source tree");
}

inline void require_default_corpus() {
  require_file(default_corpus_dir(),
               "install the default corpus with `bash scripts/install-deps.sh` "
               "(or point PGOLF_CORPUS_DIR at its data directory)");
}

// Deterministic English-like text of `words` words in sentences, for small training corpora.
inline std::string synthetic_text(int words, uint32_t seed) {
  static const char* const kWords[] = {
      "the",   "nation", "congress", "people", "peace", "trade", "law",    "year",
      "our",   "of",     "and",      "to",     "in",    "great", "public", "states",
      "union", "war",    "treaty",   "duty",   "with",  "for",   "by",     "government",
      "we",    "have",   "been",     "will",   "shall", "their", "which",  "revenue"};
  std::string text;
  uint32_t x = seed;
  for (int i = 0; i < words; ++i) {
    x = x * 1664525u + 1013904223u;  // Numerical Recipes LCG
    std::string w = kWords[(x >> 16) % (sizeof kWords / sizeof *kWords)];
    if (text.empty() || text.ends_with(". ")) w[0] = static_cast<char>(w[0] - 'a' + 'A');
    text += w;
    text += ((x >> 8) % 9 == 0) ? ". " : " ";
  }
  return text + "end.";
}

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace pgolf::test
