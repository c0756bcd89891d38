// The data directory layout (SPEC §5): training shards DIR/*_train_*.bin and validation
// shards DIR/*_val_*.bin, each sorted by name; the tokenizer defaults to DIR/tokenizer.model.
#pragma once
#include <string>
#include <vector>

namespace pgolf {

struct DataDir {
  std::vector<std::string> train_files, val_files;
  std::string tokenizer;
};

// Whether a file name is a shard of `split` ("train" or "val"): *_<split>_*.bin.
bool is_split_shard(const std::string& filename, const std::string& split);

// Lists the shards; a missing directory or an empty split is an error naming the directory.
// `tokenizer` overrides DIR/tokenizer.model when non-empty.
DataDir find_data(const std::string& dir, const std::string& tokenizer = "");

}  // namespace pgolf
