// Crash-safe file writing: data goes to "<path>.tmp.<pid>", is flushed, then renamed over
// `path`, so readers see either the old file or the complete new one (SPEC §6).
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace pgolf::io {

// Calls write(stream) on a temporary file next to `path`, flushes and fsyncs it, then
// renames it to `path`. If creating, writing, syncing or renaming fails it throws
// pgolf::Error naming `path`; if `write` itself throws, that exception propagates as is.
// Either way the temporary is removed and an existing `path` is left untouched.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace pgolf::io
