// Crash-safe writes (SPEC §6: "nothing is half-written"): the data goes to a temporary
// file in the same directory (so the final rename never crosses filesystems and is
// atomic), is flushed and fsync'ed, and only then replaces `path`.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace pgolf::io {
namespace {

// The pid keeps two processes writing the same path from sharing one temporary.
std::string temp_path_for(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

void write_temp(const std::string& path, const std::string& tmp,
                const std::function<void(std::ostream&)>& write) {
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, ": cannot create the temporary file ", tmp, " (", std::strerror(errno), ")");
  write(out);
  out.flush();
  // A full disk or I/O error only shows in the stream state, never as an exception.
  if (!out) fail(path, ": writing the temporary file ", tmp, " failed (disk full?)");
  out.close();
  if (out.fail()) fail(path, ": closing the temporary file ", tmp, " failed");
}

// Without fsync a crash right after the rename can leave `path` empty on some filesystems.
void sync_file(const std::string& path, const std::string& tmp) {
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0) fail(path, ": cannot reopen ", tmp, " to sync it (", std::strerror(errno), ")");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(path, ": syncing ", tmp, " to disk failed (", std::strerror(err), ")");
}

// Makes the rename itself durable; best effort, since some filesystems refuse to fsync a
// directory and the new file is complete either way.
void sync_parent_dir(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = temp_path_for(path);
  try {
    write_temp(path, tmp, write);
    sync_file(path, tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      fail(path, ": cannot rename ", tmp, " over it (", std::strerror(errno), ")");
  } catch (...) {
    // Whatever failed (including the caller's `write`), no temporary is left behind and
    // the old `path`, if any, is untouched; the original exception propagates.
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  sync_parent_dir(path);
}

}  // namespace pgolf::io
