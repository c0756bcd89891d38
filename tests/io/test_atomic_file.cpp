// write_file_atomic (SPEC §6): the target holds the old or the complete new content, never
// a partial one, and no temporary file survives a failure.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/error.h"
#include "io/atomic_file.h"
#include "support/temp_dir_test.h"

namespace fs = std::filesystem;
using pgolf::io::write_file_atomic;

namespace {

class AtomicFile : public pgolf::test::TempDirTest {
 protected:
  AtomicFile() : TempDirTest("pgolf_atomic") {}

  static void put(const std::string& p, const std::string& content) {
    std::ofstream(p, std::ios::binary) << content;
  }

  size_t entries() const {
    return std::distance(fs::directory_iterator(dir()), fs::directory_iterator());
  }
};

TEST_F(AtomicFile, WritesTheContentAndLeavesNoTemporary) {
  write_file_atomic(path("out.bin"), [](std::ostream& out) { out << "hello"; });
  EXPECT_EQ(slurp(path("out.bin")), "hello");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFile, ReplacesAnExistingFile) {
  put(path("out.bin"), "old content that is longer");
  write_file_atomic(path("out.bin"), [](std::ostream& out) { out << "new"; });
  EXPECT_EQ(slurp(path("out.bin")), "new");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFile, ThrowingCallbackLeavesNoFileAndNoTemporary) {
  EXPECT_THROW(write_file_atomic(path("out.bin"),
                                 [](std::ostream& out) {
                                   out << "partial";
                                   throw std::runtime_error("boom");
                                 }),
               std::runtime_error);
  EXPECT_EQ(entries(), 0u);
}

TEST_F(AtomicFile, ThrowingCallbackKeepsTheOldFile) {
  put(path("out.bin"), "old");
  EXPECT_THROW(write_file_atomic(path("out.bin"),
                                 [](std::ostream& out) {
                                   out << "partial";
                                   pgolf::fail("cannot serialise");
                                 }),
               pgolf::Error);
  EXPECT_EQ(slurp(path("out.bin")), "old");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFile, MissingDirectoryIsAnErrorNamingThePath) {
  const std::string target = path("no_such_dir/out.bin");
  try {
    write_file_atomic(target, [](std::ostream& out) { out << "x"; });
    FAIL() << "expected pgolf::Error";
  } catch (const pgolf::Error& e) {
    EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries(), 0u);
}

TEST_F(AtomicFile, ParentThatIsAFileIsAnError) {
  put(path("plain"), "x");
  EXPECT_THROW(write_file_atomic(path("plain/out.bin"), [](std::ostream& out) { out << "x"; }),
               pgolf::Error);
}

TEST_F(AtomicFile, TargetThatIsADirectoryIsAnErrorAndLeavesNoTemporary) {
  fs::create_directory(path("taken"));
  EXPECT_THROW(write_file_atomic(path("taken"), [](std::ostream& out) { out << "x"; }),
               pgolf::Error);
  EXPECT_EQ(entries(), 1u);
  EXPECT_TRUE(fs::is_directory(path("taken")));
}

}  // namespace
