// pgolf::Error — the one exception type for bad input and broken invariants.
// Its message is a single sentence meant for the user; the CLI prints it on
// stderr and exits non-zero (SPEC §6).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace pgolf {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds a message from streamable pieces: fail("tensor ", name, " has shape ", s).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

#define PGOLF_CHECK(cond, ...)            \
  do {                                    \
    if (!(cond)) ::pgolf::fail(__VA_ARGS__); \
  } while (0)

}  // namespace pgolf
