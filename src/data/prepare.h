// The `pgolf data` pipeline (SPEC §5, §6): documents -> validation split -> tokenizer (trained
// on the training documents only, or an existing `.model`) -> token shards in the challenge
// format, a copy of the tokenizer and data.json, all in one data directory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pgolf {

struct PrepareOptions {
  std::vector<std::string> texts;  // files and directories of *.txt; empty: the default corpus
  int vocab_size = 1024;           // when training a tokenizer
  bool byte_fallback = false;      // when training: spell unseen characters as bytes, not <unk>
  std::string tokenizer;           // an existing `.model` to use instead of training one
  double val_fraction = 0.05;
  std::string out_dir;
  bool force = false;  // replace the shards already in out_dir
};

struct SplitStats {
  int64_t documents = 0;
  int64_t tokens = 0;               // including one BOS per document
  int64_t bytes = 0;                // UTF-8 bytes of the documents' normalised text
  int64_t unk = 0;                  // <unk> tokens
  std::vector<std::string> shards;  // file names in out_dir
};

struct PrepareReport {
  SplitStats train, val;
  std::vector<std::string> val_names;  // the validation documents' file names
  int vocab_size = 0;
  bool byte_fallback = false;
  std::string tokenizer_source;  // the --tokenizer path, or "trained"
  double tokenizer_seconds = 0;  // training time (0 with --tokenizer)
  double seconds = 0;            // the whole pipeline
};

// Shards hold at most this many tokens each (the challenge's are 100M tokens).
inline constexpr int64_t kMaxShardTokens = 100'000'000;

// Writes into options.out_dir (created if needed):
//   tokenizer.model                    the tokenizer, verbatim
//   <corpus>_train_NNNNNN.bin, ...     training documents, each as BOS + its tokens
//   <corpus>_val_NNNNNN.bin, ...       validation documents, likewise
//   data.json                          the counts of PrepareReport, for each split
// with <corpus> "sotu" for the default corpus and "text" for --text inputs. Every file is
// written atomically; a directory that already holds shards is refused unless options.force,
// which also removes shards a previous run left that this one does not rewrite.
PrepareReport prepare_data(const PrepareOptions& options);

}  // namespace pgolf
