// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"),
// a counter-based generator: the value at (seed, stream, index) does not depend on
// the order of generation, so CPU and CUDA initialise identical weights (SPEC §2 Init).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

namespace pgolf {

inline std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(M0) * c[0], p1 = uint64_t(M1) * c[2];
    c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1],
         uint32_t(p0)};
    k[0] += W0;
    k[1] += W1;
  }
  return c;
}

// A stream of random numbers addressed by (seed, stream id, element index).
class Philox {
 public:
  Philox(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}

  // Uniform in (0, 1), 32-bit resolution; `lane` picks one of the 4 outputs.
  double uniform(uint64_t index, int lane) const {
    auto r = block(index);
    return (double(r[lane]) + 0.5) / 4294967296.0;
  }
  // Standard normal for element `index` (Box–Muller on two uniforms of its block).
  double normal(uint64_t index) const {
    auto r = block(index);
    double u1 = (double(r[0]) + 0.5) / 4294967296.0, u2 = (double(r[1]) + 0.5) / 4294967296.0;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

 private:
  std::array<uint32_t, 4> block(uint64_t index) const {
    return philox4x32({uint32_t(index), uint32_t(index >> 32), uint32_t(stream_),
                       uint32_t(stream_ >> 32)},
                      {uint32_t(seed_), uint32_t(seed_ >> 32)});
  }
  uint64_t seed_, stream_;
};

}  // namespace pgolf
