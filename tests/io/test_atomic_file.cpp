// write_file_atomic (SPEC §6): the target holds the old or the complete new content, never
// a partial one, and no temporary file survives a failure.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/error.h"
#include "io/atomic_file.h"

namespace fs = std::filesystem;
using pgolf::io::write_file_atomic;

namespace {

class AtomicFile : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("pgolf_atomic_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  static void put(const std::string& p, const std::string& content) {
    std::ofstream(p, std::ios::binary) << content;
  }

  size_t entries() const {
    return std::distance(fs::directory_iterator(dir_), fs::directory_iterator());
  }

  fs::path dir_;
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
