#include "data/data_dir.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace pgolf {

namespace fs = std::filesystem;

bool is_split_shard(const std::string& filename, const std::string& split) {
  return filename.ends_with(".bin") && filename.find("_" + split + "_") != std::string::npos;
}

namespace {

// Files named *_<split>_*.bin, sorted by name.
std::vector<std::string> shards(const fs::path& dir, const std::string& split) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_split_shard(e.path().filename().string(), split))
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

DataDir find_data(const std::string& dir, const std::string& tokenizer) {
  PGOLF_CHECK(fs::is_directory(dir), "data directory ", dir, " does not exist (make one with "
              "`pgolf data --out ", dir, "`)");
  DataDir d;
  d.train_files = shards(dir, "train");
  d.val_files = shards(dir, "val");
  PGOLF_CHECK(!d.train_files.empty(), dir, " holds no training shards (*_train_*.bin)");
  PGOLF_CHECK(!d.val_files.empty(), dir, " holds no validation shards (*_val_*.bin)");
  d.tokenizer = tokenizer.empty() ? (fs::path(dir) / "tokenizer.model").string() : tokenizer;
  PGOLF_CHECK(fs::is_regular_file(d.tokenizer), "tokenizer ", d.tokenizer,
              " not found (pass --tokenizer PATH)");
  return d;
}

}  // namespace pgolf
