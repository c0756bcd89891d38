// The reference's token streams (SPEC §3, §5): one stream over a split's sorted shards,
// read in order and wrapping to the first shard at the end; the training loader cuts it
// into contiguous per-rank spans; the validation split is all its shards concatenated.
// Every shard is checked when loaded: header, size, and every token below the vocabulary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pgolf {

// A shard's tokens after validation against `vocab_size` (error naming the file).
std::vector<uint16_t> load_checked_shard(const std::string& path, int64_t vocab_size);

class TokenStream {
 public:
  // Validates every file's header up front; tokens are loaded one shard at a time.
  TokenStream(std::vector<std::string> files, int64_t vocab_size);

  // Appends the next n tokens to `out`, crossing shard boundaries and wrapping.
  void take(int64_t n, std::vector<int32_t>& out);

  // Where the stream stands, for resumable checkpoints.
  struct Position {
    int64_t file = 0, offset = 0;
  };
  Position position() const { return {file_, pos_}; }
  void seek(Position p);

 private:
  void load(int64_t file);
  std::vector<std::string> files_;
  int64_t vocab_;
  int64_t file_ = -1, pos_ = 0;
  std::vector<uint16_t> tokens_;
};

// The reference's DistributedTokenLoader: each call takes one micro-step's batch. Of the
// span world_size * (batch_tokens / (world_size * accum) + 1) taken from the stream, rank r
// uses the r-th piece of batch_tokens / (world_size * accum) + 1 tokens: x = piece[:-1],
// y = piece[1:], as [-1, seq_len] rows.
class TrainLoader {
 public:
  TrainLoader(std::vector<std::string> files, int64_t vocab_size, int64_t rank = 0,
              int64_t world_size = 1);
  void next_batch(int64_t batch_tokens, int64_t accum, std::vector<int32_t>& x,
                  std::vector<int32_t>& y);
  TokenStream& stream() { return stream_; }

 private:
  TokenStream stream_;
  int64_t rank_, world_;
  std::vector<int32_t> chunk_;
};

// All validation tokens, truncated to a whole number of seq_len windows plus one.
std::vector<int32_t> load_validation_tokens(const std::vector<std::string>& files,
                                            int64_t vocab_size, int64_t seq_len);

}  // namespace pgolf
