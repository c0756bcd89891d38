// Embedding gather / scatter-add and the BigramHash index (SPEC §2, Embedding 1–2).
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "kernels/cpu/embedding.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

template <typename T>
void check_embedding_forward() {
  const int64_t V = 5, dim = 10;
  const std::vector<int32_t> ids = {3, 0, 4, 3, 1, 1, 2};
  const int64_t n = ids.size();
  auto tab = random_vector(V * dim, 1);
  std::vector<T> table(tab.begin(), tab.end()), out(n * dim, T(7));
  pgolf::cpu::embedding_forward(ids.data(), table.data(), out.data(), n, dim);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < dim; ++c) EXPECT_EQ(out[i * dim + c], table[ids[i] * dim + c]);
}

TEST(Embedding, ForwardFloat) { check_embedding_forward<float>(); }
TEST(Embedding, ForwardDouble) { check_embedding_forward<double>(); }

// Repeated ids sum their rows; rows never looked up keep their pre-filled values. dim 70
// spans two of the backward's column blocks.
TEST(Embedding, BackwardSumsRepeatsAndAccumulates) {
  const int64_t V = 6, dim = 70;
  const std::vector<int32_t> ids = {2, 0, 2, 5, 2, 0, 3};
  const int64_t n = ids.size();
  auto dout = random_vector(n * dim, 2);
  auto dtable = random_vector(V * dim, 3);
  const auto pre = dtable;
  pgolf::cpu::embedding_backward(ids.data(), dout.data(), dtable.data(), n, dim);
  for (int64_t v = 0; v < V; ++v)
    for (int64_t c = 0; c < dim; ++c) {
      double ref = pre[v * dim + c];
      for (int64_t i = 0; i < n; ++i)
        if (ids[i] == v) ref += dout[i * dim + c];
      EXPECT_NEAR(dtable[v * dim + c], ref, 1e-14) << v << "," << c;
    }
  // Row 2 got three contributions, row 1 none.
  EXPECT_NEAR(dtable[2 * dim], pre[2 * dim] + dout[0] + dout[2 * dim] + dout[4 * dim], 1e-14);
  EXPECT_EQ(dtable[1 * dim + 5], pre[1 * dim + 5]);
}

TEST(Embedding, GradCheck) {
  const int64_t V = 5, dim = 10;
  const std::vector<int32_t> ids = {3, 0, 4, 3, 1, 1, 3};
  const int64_t n = ids.size();
  auto table = random_vector(V * dim, 4), w = random_vector(n * dim, 5);
  std::vector<double> out(n * dim), dtable(V * dim, 0.0);
  pgolf::cpu::embedding_backward(ids.data(), w.data(), dtable.data(), n, dim);
  pgolf::test::check_gradients({{"table", table.data(), dtable.data(), V * dim}}, [&] {
    pgolf::cpu::embedding_forward(ids.data(), table.data(), out.data(), n, dim);
    return pgolf::test::dot(out, w);
  });
}

// Hand-computed with int32 wrap-around and floor-mod by Bv-1 = 3071:
//   36313*60000 = 2178780000 wraps to -2116187296; 27191*5 = 135955;
//   -2116187296 XOR 135955 = -2116052877; C's % gives -1824, floor-mod gives 1247.
//   36313*3 = 108939; 27191*60000 = 1631460000; XOR = 1631564587 -> 636.
//   36313*1023 = 37148199; 27191*3 = 81573; XOR = 37218434 -> 985.
//   -2116187296 XOR 1631460000 = -521956928 -> 2516 (floor-mod of a negative value).
//   0 XOR 1631460000 -> 463;  254191 XOR 0 -> 2369.
TEST(Embedding, BigramHash) {
  const std::vector<int32_t> tokens = {5, 60000, 3, 1023, 60000, 60000, 0, 7};
  const std::vector<int32_t> expect = {3071, 1247, 636, 985, 3071, 2516, 463, 2369};
  std::vector<int32_t> idx(tokens.size(), -1);
  pgolf::cpu::bigram_hash(tokens.data(), idx.data(), /*B=*/2, /*T=*/4, /*bigram_vocab=*/3072);
  EXPECT_EQ(idx, expect);
}

TEST(Embedding, BigramHashRejectsTinyVocab) {
  const std::vector<int32_t> tokens = {1, 2};
  std::vector<int32_t> idx(2);
  EXPECT_THROW(pgolf::cpu::bigram_hash(tokens.data(), idx.data(), 1, 2, 1), pgolf::Error);
}

}  // namespace
