// Token shards (SPEC §5): the exact challenge layout, and one clear error naming the file
// for every way a shard can be malformed.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/shard.h"
#include "support/temp_dir_test.h"

namespace fs = std::filesystem;
using namespace pgolf::io;
using pgolf::test::contains;
using pgolf::test::error_of;

namespace {

class Shard : public pgolf::test::TempDirTest {
 protected:
  Shard() : TempDirTest("pgolf_shard") {}

  // A shard written byte by byte, so the tests do not depend on write_shard.
  std::string raw_shard(int32_t magic, int32_t version, int32_t num_tokens, size_t token_count) {
    std::array<int32_t, 256> header{};
    header[0] = magic;
    header[1] = version;
    header[2] = num_tokens;
    const std::string p = path("raw.bin");
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.data()), sizeof(header));
    const std::vector<uint16_t> tokens(token_count, 7);
    out.write(reinterpret_cast<const char*>(tokens.data()), 2 * token_count);
    return p;
  }
};

TEST_F(Shard, RoundTrip) {
  const std::vector<uint16_t> tokens = {0, 1, 2, 1023, 40000, 65535};
  write_shard(path("a.bin"), tokens);
  EXPECT_EQ(shard_num_tokens(path("a.bin")), 6);
  EXPECT_EQ(read_shard(path("a.bin")), tokens);
  EXPECT_EQ(read_shard(path("a.bin"), 3),
            std::vector<uint16_t>(tokens.begin(), tokens.begin() + 3));
  EXPECT_EQ(read_shard(path("a.bin"), 6), tokens);
  EXPECT_TRUE(read_shard(path("a.bin"), 0).empty());
}

TEST_F(Shard, EmptyShardRoundTrips) {
  write_shard(path("empty.bin"), {});
  EXPECT_EQ(fs::file_size(path("empty.bin")), 1024u);
  EXPECT_EQ(shard_num_tokens(path("empty.bin")), 0);
  EXPECT_TRUE(read_shard(path("empty.bin")).empty());
}

TEST_F(Shard, WritesTheChallengeLayout) {
  write_shard(path("a.bin"), {0x0102, 0xfffe});
  std::ifstream in(path("a.bin"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.size(), 1024u + 4u);
  int32_t words[256];
  std::memcpy(words, bytes.data(), sizeof(words));
  EXPECT_EQ(words[0], 20240520);
  EXPECT_EQ(words[1], 1);
  EXPECT_EQ(words[2], 2);
  for (int i = 3; i < 256; ++i) EXPECT_EQ(words[i], 0) << "header word " << i;
  // Tokens are little-endian uint16.
  EXPECT_EQ(static_cast<uint8_t>(bytes[1024]), 0x02);
  EXPECT_EQ(static_cast<uint8_t>(bytes[1025]), 0x01);
  EXPECT_EQ(static_cast<uint8_t>(bytes[1026]), 0xfe);
  EXPECT_EQ(static_cast<uint8_t>(bytes[1027]), 0xff);
}

TEST_F(Shard, ReadsAHandWrittenShard) {
  const std::string p = raw_shard(kShardMagic, kShardVersion, 5, 5);
  EXPECT_EQ(read_shard(p), std::vector<uint16_t>(5, 7));
}

TEST_F(Shard, MissingFileIsAnError) {
  const std::string p = path("missing.bin");
  const std::string msg = error_of([&] { read_shard(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "not found")) << msg;
  EXPECT_THROW(shard_num_tokens(p), pgolf::Error);
}

TEST_F(Shard, DirectoryIsAnError) {
  const std::string msg = error_of([&] { read_shard(dir().string()); });
  EXPECT_TRUE(contains(msg, dir().string())) << msg;
}

TEST_F(Shard, FileShorterThanTheHeaderIsAnError) {
  const std::string p = path("short.bin");
  std::ofstream(p, std::ios::binary) << std::string(100, '\0');
  const std::string msg = error_of([&] { shard_num_tokens(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "100 bytes") && contains(msg, "1024")) << msg;
}

TEST_F(Shard, WrongMagicIsAnErrorSayingTheValueFound) {
  const std::string p = raw_shard(12345, kShardVersion, 0, 0);
  const std::string msg = error_of([&] { read_shard(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "12345") && contains(msg, "20240520")) << msg;
}

TEST_F(Shard, WrongVersionIsAnError) {
  const std::string p = raw_shard(kShardMagic, 2, 0, 0);
  const std::string msg = error_of([&] { read_shard(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "version 2")) << msg;
}

TEST_F(Shard, NegativeTokenCountIsAnError) {
  const std::string p = raw_shard(kShardMagic, kShardVersion, -1, 0);
  const std::string msg = error_of([&] { read_shard(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "negative")) << msg;
}

TEST_F(Shard, TooFewTokensForTheHeaderIsAnError) {
  const std::string p = raw_shard(kShardMagic, kShardVersion, 10, 9);
  const std::string msg = error_of([&] { read_shard(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "1042 bytes") && contains(msg, "1044 bytes"))
      << msg;
}

TEST_F(Shard, TrailingBytesAreAnError) {
  const std::string p = raw_shard(kShardMagic, kShardVersion, 10, 11);
  const std::string msg = error_of([&] { shard_num_tokens(p); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "1046 bytes") && contains(msg, "1044 bytes"))
      << msg;
}

TEST_F(Shard, AskingForMoreTokensThanPresentIsAnError) {
  write_shard(path("a.bin"), {1, 2, 3});
  const std::string msg = error_of([&] { read_shard(path("a.bin"), 4); });
  EXPECT_TRUE(contains(msg, path("a.bin")) && contains(msg, "4 tokens") && contains(msg, "3"))
      << msg;
}

TEST_F(Shard, WriteIntoAMissingDirectoryIsAnError) {
  EXPECT_THROW(write_shard(path("nope/a.bin"), {1}), pgolf::Error);
}

}  // namespace
