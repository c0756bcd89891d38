// Token embedding gather / scatter-add and the BigramHash index (SPEC §2, Embedding 1–2).
#include "kernels/cpu/embedding.h"
#include "core/error.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>

namespace pgolf::cpu {

// Columns per unit of work in the scatter-add: each thread owns whole column blocks,
// so every dtable element is written by one thread, ids taken in order.
constexpr int64_t kEmbColBlock = 64;

// out[i, :] = table[ids[i], :].
template <typename T>
void embedding_forward(const int32_t* ids, const T* table, T* out, int64_t n, int64_t dim) {
#pragma omp parallel for schedule(static) if (worth_threads(n * dim))
  for (int64_t i = 0; i < n; ++i) {
    const T* row = table + int64_t(ids[i]) * dim;
    std::copy(row, row + dim, out + i * dim);
  }
}

// dtable[ids[i], :] += dout[i, :], summed over i in order (repeated ids accumulate).
template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dtable, int64_t n, int64_t dim) {
  const int64_t nblocks = (dim + kEmbColBlock - 1) / kEmbColBlock;
#pragma omp parallel for schedule(static) if (worth_threads(n * dim))
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kEmbColBlock, c1 = std::min(dim, c0 + kEmbColBlock);
    for (int64_t i = 0; i < n; ++i) {
      T* drow = dtable + int64_t(ids[i]) * dim;
      const T* g = dout + i * dim;
      for (int64_t c = c0; c < c1; ++c) drow[c] += g[c];
    }
  }
}

// SPEC §2 step 2: idx_0 = Bv-1, idx_t = ((36313 x_t) XOR (27191 x_{t-1})) floor-mod (Bv-1),
// products wrapping as int32 (done in uint32, whose wrap is defined, then reinterpreted).
void bigram_hash(const int32_t* tokens, int32_t* idx, int64_t B, int64_t T, int64_t bigram_vocab) {
  PGOLF_CHECK(bigram_vocab >= 2, "bigram_hash needs bigram_vocab_size >= 2 (it hashes mod Bv-1)");
  const int32_t mod = int32_t(bigram_vocab - 1);
#pragma omp parallel for schedule(static) if (worth_threads(B * T))
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* x = tokens + b * T;
    int32_t* out = idx + b * T;
    if (T > 0) out[0] = mod;
    for (int64_t t = 1; t < T; ++t) {
      uint32_t h = (36313u * uint32_t(x[t])) ^ (27191u * uint32_t(x[t - 1]));
      int32_t r = int32_t(h) % mod;
      out[t] = r < 0 ? r + mod : r;
    }
  }
}

#define PGOLF_INSTANTIATE(T)                                                          \
  template void embedding_forward<T>(const int32_t*, const T*, T*, int64_t, int64_t); \
  template void embedding_backward<T>(const int32_t*, const T*, T*, int64_t, int64_t);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cpu
