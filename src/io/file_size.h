// The size of a file that a reader is about to parse, or one clear error naming it.
#pragma once
#include <cstdint>
#include <string>

namespace pgolf::io {

// The size in bytes of the regular file at `path`. Throws pgolf::Error naming `path` when it
// does not exist, is a directory, or its size cannot be read; `what` is the noun the
// messages use for the file ("safetensors file", "token shard").
int64_t file_size_or_fail(const std::string& path, const std::string& what);

}  // namespace pgolf::io
