#include "io/file_size.h"

#include <filesystem>
#include <system_error>

#include "core/error.h"

namespace pgolf::io {

int64_t file_size_or_fail(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) fail(path, ": ", what, " not found");
  if (std::filesystem::is_directory(st)) fail(path, ": is a directory, not a ", what);
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ": cannot read the ", what, "'s size (", ec.message(), ")");
  return static_cast<int64_t>(size);
}

}  // namespace pgolf::io
