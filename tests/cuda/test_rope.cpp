// CUDA RoPE (kernels/cuda/rope.h) against the CPU kernel on the same bf16 inputs and the
// same tables (cuda::rope_tables uploads cpu::rope_tables<float>). Tolerance: each output is
// one fp32 rotation (or sum) rounded once to bf16: 2^-8 relative, floor 1e-6 of the scale.
#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/rope.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

constexpr int64_t B = 2, T = 7, H = 3, hd = 16;
constexpr double kBase = 10000;
constexpr int64_t kTrainSeqLen = 5;  // < T: the long-sequence base rescale is in the tables

TEST(CudaRope, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (int64_t rdims : {int64_t(0), int64_t(8)}) {  // all dims, and partial with pass-through
    const int64_t r = rdims == 0 ? hd : rdims;
    std::vector<float> cos(T * r / 2), sin(T * r / 2);
    pgolf::cpu::rope_tables(T, r, kBase, kTrainSeqLen, cos.data(), sin.data());
    auto x = random_bf16_values(B * T * H * hd, 1);
    std::vector<float> out(x.size());
    pgolf::cpu::rope_forward(x.data(), out.data(), cos.data(), sin.data(), B, T, H, hd, rdims);

    const cuda::RopeTables tables = cuda::rope_tables(ctx, T, r, kBase, kTrainSeqLen);
    expect_close(download(ctx, tables.cos), cos, 0, 0, "cos table");
    auto d_x = upload_bf16(ctx, x);
    cuda::DeviceBuffer<cuda::bf16> d_out(int64_t(x.size()));
    cuda::rope_forward(ctx, d_x.data(), d_out.data(), tables.cos.data(), tables.sin.data(), B, T,
                       H, hd, rdims);
    expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");

    // In place gives the same bits.
    cuda::rope_forward(ctx, d_x.data(), d_x.data(), tables.cos.data(), tables.sin.data(), B, T,
                       H, hd, rdims);
    EXPECT_EQ(download_floats(ctx, d_x), download_floats(ctx, d_out)) << "rdims " << rdims;
  }
}

TEST(CudaRope, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (int64_t rdims : {int64_t(0), int64_t(8)}) {
    const int64_t r = rdims == 0 ? hd : rdims;
    const cuda::RopeTables tables = cuda::rope_tables(ctx, T, r, kBase, kTrainSeqLen);
    std::vector<float> cos = download(ctx, tables.cos), sin = download(ctx, tables.sin);
    auto g = random_bf16_values(B * T * H * hd, 2), dx0 = random_bf16_values(B * T * H * hd, 3);
    std::vector<float> dx = dx0;
    pgolf::cpu::rope_backward(g.data(), dx.data(), cos.data(), sin.data(), B, T, H, hd, rdims);

    auto d_g = upload_bf16(ctx, g), d_dx = upload_bf16(ctx, dx0);
    cuda::rope_backward(ctx, d_g.data(), d_dx.data(), tables.cos.data(), tables.sin.data(), B, T,
                        H, hd, rdims);
    expect_close(download_floats(ctx, d_dx), dx, kBf16Rounding, 1e-6, "dx");
  }
}

}  // namespace
