// CUDA embedding gather / scatter-add and BigramHash (kernels/cuda/embedding.h) against the
// CPU kernels. Tolerances: the gather is one bf16 rounding of an fp32 table entry, so it must
// equal the CPU's row rounded to bf16 exactly; the scatter-add sums the same fp32 terms in
// another order (atomics): 1e-6 relative, floor 1e-6 of the scale; the hash is exact.
#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cuda/embedding.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

constexpr int64_t kVocab = 50, kDim = 72, kN = 300;  // 300 ids over 50 rows: many repeats

std::vector<int32_t> ids(uint32_t seed) {
  std::vector<int32_t> v(kN);
  for (int64_t i = 0; i < kN; ++i) v[i] = int32_t((i * 37 + seed * 11 + i * i) % kVocab);
  return v;
}

TEST(CudaEmbedding, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto table = random_floats(kVocab * kDim, 1);
  const auto id = ids(1);
  std::vector<float> out(kN * kDim);
  pgolf::cpu::embedding_forward(id.data(), table.data(), out.data(), kN, kDim);
  for (float& v : out) v = bf16_round(v);

  auto d_table = upload(ctx, table);
  auto d_ids = upload(ctx, id);
  cuda::DeviceBuffer<cuda::bf16> d_out(kN * kDim);
  cuda::embedding_forward(ctx, d_ids.data(), d_table.data(), d_out.data(), kN, kDim);
  EXPECT_EQ(download_floats(ctx, d_out), out);
}

TEST(CudaEmbedding, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto g = random_bf16_values(kN * kDim, 2);
  const auto dtable0 = random_floats(kVocab * kDim, 3);  // accumulated into
  const auto id = ids(2);
  std::vector<float> dtable = dtable0;
  pgolf::cpu::embedding_backward(id.data(), g.data(), dtable.data(), kN, kDim);

  auto d_g = upload_bf16(ctx, g);
  auto d_ids = upload(ctx, id);
  auto d_dtable = upload(ctx, dtable0);
  cuda::embedding_backward(ctx, d_ids.data(), d_g.data(), d_dtable.data(), kN, kDim);
  expect_close(download(ctx, d_dtable), dtable, 1e-6, 1e-6, "dtable");
}

TEST(CudaEmbedding, BigramHashMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t B = 3, T = 41, Bv = 3072;
  std::vector<int32_t> tokens(B * T);
  for (int64_t i = 0; i < B * T; ++i)  // large ids too, so the int32 products wrap
    tokens[i] = int32_t((i * 2654435761u) % (i % 5 == 0 ? 2000000000u : 1024u));
  std::vector<int32_t> want(B * T);
  pgolf::cpu::bigram_hash(tokens.data(), want.data(), B, T, Bv);

  auto d_tokens = upload(ctx, tokens);
  cuda::DeviceBuffer<int32_t> d_idx(B * T);
  cuda::bigram_hash(ctx, d_tokens.data(), d_idx.data(), B, T, Bv);
  EXPECT_EQ(download(ctx, d_idx), want);
}

}  // namespace
