// Token shards, the challenge format read as is (SPEC §5): 256 little-endian int32 header
// words ([0] = 20240520 magic, [1] = 1 version, [2] = num_tokens), then num_tokens uint16.
// The file size must equal 1024 + 2 * num_tokens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pgolf::io {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;

// Header-validated token count of a shard (reads only the header and the file size).
int64_t shard_num_tokens(const std::string& path);

// Reads the first `count` tokens (all when count < 0) after validating the header and
// size; asking for more tokens than the shard holds is an error naming the file.
std::vector<uint16_t> read_shard(const std::string& path, int64_t count = -1);

// Writes a shard atomically.
void write_shard(const std::string& path, const std::vector<uint16_t>& tokens);

}  // namespace pgolf::io
