#include "data/token_stream.h"

#include <algorithm>

#include "core/error.h"
#include "io/shard.h"

namespace pgolf {

std::vector<uint16_t> load_checked_shard(const std::string& path, int64_t vocab_size) {
  std::vector<uint16_t> tokens = io::read_shard(path);
  auto bad = std::find_if(tokens.begin(), tokens.end(),
                          [&](uint16_t t) { return int64_t(t) >= vocab_size; });
  PGOLF_CHECK(bad == tokens.end(), path, ": token ", bad == tokens.end() ? 0 : *bad,
              " at position ", bad - tokens.begin(), " is outside the model's vocabulary of ",
              vocab_size, " (was the shard made with another tokenizer?)");
  return tokens;
}

TokenStream::TokenStream(std::vector<std::string> files, int64_t vocab_size)
    : files_(std::move(files)), vocab_(vocab_size) {
  PGOLF_CHECK(!files_.empty(), "internal: a token stream needs at least one shard");
  int64_t total = 0;
  for (const auto& f : files_) total += io::shard_num_tokens(f);
  PGOLF_CHECK(total > 0, "the shards starting with ", files_[0], " hold no tokens");
  load(0);
}

void TokenStream::load(int64_t file) {
  if (file != file_) tokens_ = load_checked_shard(files_[size_t(file)], vocab_);
  file_ = file;
  pos_ = 0;
}

void TokenStream::take(int64_t n, std::vector<int32_t>& out) {
  while (n > 0) {
    const int64_t avail = int64_t(tokens_.size()) - pos_;
    if (avail <= 0) {
      load((file_ + 1) % int64_t(files_.size()));
      continue;
    }
    const int64_t k = std::min(n, avail);
    out.insert(out.end(), tokens_.begin() + pos_, tokens_.begin() + pos_ + k);
    pos_ += k;
    n -= k;
  }
}

void TokenStream::seek(Position p) {
  PGOLF_CHECK(p.file >= 0 && p.file < int64_t(files_.size()), "cannot resume the data stream at "
              "shard ", p.file, ": the split has ", files_.size(), " shards now");
  load(p.file);
  PGOLF_CHECK(p.offset >= 0 && p.offset <= int64_t(tokens_.size()), "cannot resume the data "
              "stream at token ", p.offset, " of ", files_[size_t(p.file)], ", which has ",
              tokens_.size());
  pos_ = p.offset;
}

TrainLoader::TrainLoader(std::vector<std::string> files, int64_t vocab_size, int64_t rank,
                         int64_t world_size)
    : stream_(std::move(files), vocab_size), rank_(rank), world_(world_size) {}

void TrainLoader::next_batch(int64_t batch_tokens, int64_t accum, std::vector<int32_t>& x,
                             std::vector<int32_t>& y) {
  const int64_t local = batch_tokens / (world_ * accum), span = local + 1;
  chunk_.clear();
  stream_.take(span * world_, chunk_);
  const auto first = chunk_.begin() + rank_ * span;
  x.assign(first, first + local);
  y.assign(first + 1, first + span);
}

std::vector<int32_t> load_validation_tokens(const std::vector<std::string>& files,
                                            int64_t vocab_size, int64_t seq_len) {
  std::vector<int32_t> tokens;
  for (const auto& f : files) {
    std::vector<uint16_t> shard = load_checked_shard(f, vocab_size);
    tokens.insert(tokens.end(), shard.begin(), shard.end());
  }
  const int64_t usable = (int64_t(tokens.size()) - 1) / seq_len * seq_len;
  PGOLF_CHECK(usable > 0, "the validation split (", files.empty() ? "no shards" : files[0],
              " ...) holds ", tokens.size(), " tokens, fewer than one window of ", seq_len,
              " + 1");
  tokens.resize(size_t(usable + 1));
  return tokens;
}

}  // namespace pgolf
