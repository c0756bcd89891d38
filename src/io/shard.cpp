// Token shards in the challenge's format (SPEC §5), read as is: every malformed file is
// reported in one sentence naming it, before any token is used.
#include "io/shard.h"

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/file_size.h"

namespace pgolf::io {
namespace {

// Header words and tokens are copied straight from/to memory, which is right only on a
// little-endian host (x86-64 and aarch64, the machines pgolf targets).
static_assert(std::endian::native == std::endian::little, "shards are little-endian");

constexpr int kHeaderWords = 256;
constexpr int64_t kHeaderBytes = kHeaderWords * sizeof(int32_t);
using Header = std::array<int32_t, kHeaderWords>;

int64_t expected_file_size(int64_t num_tokens) { return kHeaderBytes + 2 * num_tokens; }

// Validates the header against SPEC §5 and the file size; returns num_tokens.
int64_t validate(const std::string& path, const Header& h, int64_t file_size) {
  if (h[0] != kShardMagic)
    fail(path, ": not a token shard (magic number ", h[0], ", expected ", kShardMagic, ")");
  if (h[1] != kShardVersion)
    fail(path, ": unsupported token shard version ", h[1], " (expected ", kShardVersion, ")");
  const int64_t n = h[2];
  if (n < 0) fail(path, ": token shard header gives a negative token count ", n);
  if (file_size != expected_file_size(n))
    fail(path, ": token shard is ", file_size, " bytes but its header's ", n, " tokens need ",
         expected_file_size(n), " bytes");
  return n;
}

// Opens `path`, reads and validates its header; leaves `in` at the first token.
int64_t open_shard(const std::string& path, std::ifstream& in) {
  const int64_t size = file_size_or_fail(path, "token shard");
  if (size < kHeaderBytes)
    fail(path, ": token shard is ", size, " bytes, shorter than its ", kHeaderBytes,
         "-byte header");
  in.open(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the token shard (", std::strerror(errno), ")");
  Header h;
  if (!in.read(reinterpret_cast<char*>(h.data()), kHeaderBytes))
    fail(path, ": reading the token shard header failed");
  return validate(path, h, size);
}

}  // namespace

int64_t shard_num_tokens(const std::string& path) {
  std::ifstream in;
  return open_shard(path, in);
}

std::vector<uint16_t> read_shard(const std::string& path, int64_t count) {
  std::ifstream in;
  const int64_t n = open_shard(path, in);
  if (count > n) fail(path, ": asked for ", count, " tokens but the token shard holds only ", n);
  if (count < 0) count = n;
  std::vector<uint16_t> tokens(count);
  if (!in.read(reinterpret_cast<char*>(tokens.data()), 2 * count))
    fail(path, ": reading ", count, " tokens from the token shard failed");
  return tokens;
}

void write_shard(const std::string& path, const std::vector<uint16_t>& tokens) {
  // num_tokens is an int32 header word, so larger shards cannot be described.
  if (tokens.size() > static_cast<size_t>(INT32_MAX))
    fail(path, ": ", tokens.size(), " tokens do not fit in one token shard (at most ", INT32_MAX,
         ")");
  Header h{};
  h[0] = kShardMagic;
  h[1] = kShardVersion;
  h[2] = static_cast<int32_t>(tokens.size());
  write_file_atomic(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(h.data()), kHeaderBytes);
    out.write(reinterpret_cast<const char*>(tokens.data()),
              static_cast<std::streamsize>(2 * tokens.size()));
  });
}

}  // namespace pgolf::io
