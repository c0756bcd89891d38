// The CUDA runtime layer (core/cuda/runtime.h). The first three tests need no GPU and run on
// every machine the backend is built on: the device count never throws, statuses become
// errors naming the call, and a context for a missing device is an error, not a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/cuda/graph.h"
#include "core/cuda/runtime.h"
#include "cuda/cuda_test_support.h"

namespace {

namespace cuda = pgolf::cuda;

TEST(CudaRuntime, DeviceCountNeverThrows) {
  int count = -1;
  EXPECT_NO_THROW(count = cuda::device_count());
  EXPECT_GE(count, 0);
  EXPECT_EQ(cuda::device_count(), count);  // the same answer twice
}

TEST(CudaRuntime, StatusesBecomeErrorsNamingTheCall) {
  EXPECT_NO_THROW(cuda::check(cudaSuccess, "cudaFree(p)"));
  EXPECT_NO_THROW(cuda::check(CUBLAS_STATUS_SUCCESS, "cublasLtMatmul(...)"));
  try {
    cuda::check(cudaErrorMemoryAllocation, "cudaMalloc(&p, bytes)");
    ADD_FAILURE() << "no error thrown";
  } catch (const pgolf::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cudaMalloc(&p, bytes)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cudaErrorMemoryAllocation"), std::string::npos) << msg;
  }
  try {
    cuda::check(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul(...)");
    ADD_FAILURE() << "no error thrown";
  } catch (const pgolf::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cublasLtMatmul(...)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CUBLAS_STATUS_NOT_SUPPORTED"), std::string::npos) << msg;
  }
}

TEST(CudaRuntime, ContextForAMissingDeviceIsAnError) {
  EXPECT_THROW(cuda::Context ctx(cuda::device_count()), pgolf::Error);
  EXPECT_THROW(cuda::Context ctx(-1), pgolf::Error);
}

// Host -> device -> host is exact; new buffers are zero; moves hand the memory over.
TEST(CudaRuntime, DeviceBufferRoundTrip) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const std::vector<float> host = pgolf::test::random_floats(1000, 1);
  cuda::DeviceBuffer<float> d(1000);
  EXPECT_EQ(pgolf::test::download(ctx, d), std::vector<float>(1000, 0.0f));
  d.upload(host, ctx.stream());
  cuda::DeviceBuffer<float> moved(std::move(d));
  EXPECT_EQ(d.size(), 0);
  EXPECT_EQ(d.data(), nullptr);
  EXPECT_EQ(pgolf::test::download(ctx, moved), host);
  std::vector<float> wrong(999);
  EXPECT_THROW(moved.download(wrong, ctx.stream()), pgolf::Error);
}

// Scratch grows on demand and keeps its address while big enough; each reallocation, and
// only a reallocation, is counted.
TEST(CudaRuntime, ContextScratchGrows) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  EXPECT_NE(ctx.stream(), nullptr);
  EXPECT_NE(ctx.lt(), nullptr);
  EXPECT_EQ(ctx.workspace_bytes(), cuda::Context::kDefaultWorkspaceBytes);
  const uint64_t generation = ctx.scratch_generation();
  float* small = ctx.scratch(100);
  EXPECT_EQ(ctx.scratch_generation(), generation + 1);
  EXPECT_EQ(ctx.scratch(50), small);
  EXPECT_EQ(ctx.scratch(100), small);
  EXPECT_EQ(ctx.scratch_generation(), generation + 1);
  EXPECT_NE(ctx.scratch(1 << 20), nullptr);
  EXPECT_EQ(ctx.scratch_generation(), generation + 2);
  ctx.synchronize();
}

// Inside a CUDA graph capture the scratch may be used but not grown: a clear Error, which
// ends the capture and leaves the scratch as it was.
TEST(CudaRuntime, ScratchCannotGrowDuringCapture) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  float* p = ctx.scratch(1000);
  const uint64_t generation = ctx.scratch_generation();
  cuda::Graph graph;
  graph.capture(ctx, [&] { EXPECT_EQ(ctx.scratch(1000), p); });
  EXPECT_TRUE(graph.ready());
  try {
    graph.capture(ctx, [&] { ctx.scratch(2000); });
    ADD_FAILURE() << "the scratch grew during a capture";
  } catch (const pgolf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("capture"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(graph.ready());
  EXPECT_EQ(ctx.scratch_generation(), generation);
  EXPECT_NE(ctx.scratch(2000), nullptr);  // eagerly it grows
  EXPECT_EQ(ctx.scratch_generation(), generation + 1);
}

// Pinned memory as the source of an asynchronous copy, and an event marking its end: after
// synchronize() the pinned block may be overwritten without changing what arrived.
TEST(CudaRuntime, PinnedCopyAndEvent) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const std::vector<float> host = pgolf::test::random_floats(5000, 2);
  cuda::PinnedBuffer<float> pinned;
  pinned.resize(int64_t(host.size()));
  EXPECT_EQ(pinned.size(), int64_t(host.size()));
  std::copy(host.begin(), host.end(), pinned.data());
  cuda::DeviceBuffer<float> d(int64_t(host.size()));
  cuda::Event copied;
  copied.synchronize();  // never recorded: returns at once
  PGOLF_CUDA_CHECK(cudaMemcpyAsync(d.data(), pinned.data(), d.bytes(), cudaMemcpyHostToDevice,
                                   ctx.stream()));
  copied.record(ctx.stream());
  copied.synchronize();
  std::fill(pinned.data(), pinned.data() + pinned.size(), 0.0f);
  EXPECT_EQ(pgolf::test::download(ctx, d), host);
}

}  // namespace
