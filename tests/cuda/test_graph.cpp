// CUDA graphs (core/cuda/graph.h): captured work runs only when launched, replays read the
// buffers' contents at replay time, and a capture that throws (the work's own exception, or a
// call the capture refuses) ends cleanly: no graph, the error rethrown, the stream usable.
// The work is add_into (dst += src in bf16) on small integers, so every expected value is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cuda/graph.h"
#include "cuda/cuda_test_support.h"
#include "kernels/cuda/elementwise.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

constexpr int64_t kN = 1000;

// Integers in [-4, 4]: bf16-exact, and so are their small multiples.
std::vector<float> small_ints(uint32_t seed) {
  std::vector<float> v;
  for (double x : random_vector(kN, seed, 2.0))
    v.push_back(float(std::max(-4L, std::min(4L, std::lround(x)))));
  return v;
}

std::vector<float> times(const std::vector<float>& v, float k) {
  std::vector<float> out;
  for (float x : v) out.push_back(k * x);
  return out;
}

TEST(CudaGraph, CapturedWorkRunsOnlyWhenLaunched) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const std::vector<float> a = small_ints(1), b = small_ints(2);
  auto src = upload_bf16(ctx, a);
  cuda::DeviceBuffer<cuda::bf16> dst(kN);
  cuda::Graph graph;
  EXPECT_FALSE(graph.ready());
  graph.capture(ctx, [&] { cuda::add_into(ctx, src.data(), dst.data(), kN); });
  EXPECT_TRUE(graph.ready());
  EXPECT_EQ(download_floats(ctx, dst), std::vector<float>(kN, 0.0f));  // nothing ran

  graph.launch(ctx);
  graph.launch(ctx);
  EXPECT_EQ(download_floats(ctx, dst), times(a, 2));
  // The graph holds the address, not the contents: a new src is what the next replay adds.
  src.upload(to_bf16(b), ctx.stream());
  graph.launch(ctx);
  const std::vector<float> want = [&] {
    std::vector<float> w = times(a, 2);
    for (size_t i = 0; i < w.size(); ++i) w[i] += b[i];
    return w;
  }();
  EXPECT_EQ(download_floats(ctx, dst), want);

  graph.reset();
  EXPECT_FALSE(graph.ready());
  EXPECT_THROW(graph.launch(ctx), pgolf::Error);
}

// A second capture replaces the first.
TEST(CudaGraph, RecaptureReplaces) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const std::vector<float> a = small_ints(3);
  auto src = upload_bf16(ctx, a);
  cuda::DeviceBuffer<cuda::bf16> first(kN), second(kN);
  cuda::Graph graph;
  graph.capture(ctx, [&] { cuda::add_into(ctx, src.data(), first.data(), kN); });
  graph.capture(ctx, [&] { cuda::add_into(ctx, src.data(), second.data(), kN); });
  graph.launch(ctx);
  EXPECT_EQ(download_floats(ctx, first), std::vector<float>(kN, 0.0f));
  EXPECT_EQ(download_floats(ctx, second), a);
}

// After a failed capture the stream takes eager work and a new capture at once.
void expect_stream_usable(cuda::Context& ctx, cuda::Graph& graph) {
  const std::vector<float> a = small_ints(4);
  auto src = upload_bf16(ctx, a);
  cuda::DeviceBuffer<cuda::bf16> dst(kN);
  cuda::add_into(ctx, src.data(), dst.data(), kN);
  EXPECT_EQ(download_floats(ctx, dst), a);
  graph.capture(ctx, [&] { cuda::add_into(ctx, src.data(), dst.data(), kN); });
  graph.launch(ctx);
  EXPECT_EQ(download_floats(ctx, dst), times(a, 2));
}

TEST(CudaGraph, ExceptionInsideCaptureEndsItAndIsRethrown) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  cuda::DeviceBuffer<cuda::bf16> buf(kN);
  cuda::Graph graph;
  graph.capture(ctx, [] {});  // a ready graph, which the failed capture below must drop
  EXPECT_THROW(graph.capture(ctx,
                             [&] {
                               cuda::add_into(ctx, buf.data() + 1, buf.data(), kN - 1);
                               throw std::runtime_error("work failed");
                             }),
               std::runtime_error);
  EXPECT_FALSE(graph.ready());
  EXPECT_EQ(download_floats(ctx, buf), std::vector<float>(kN, 0.0f));
  expect_stream_usable(ctx, graph);
}

// Waiting for the stream is refused during a capture: an Error naming the call, not a
// silently broken graph.
TEST(CudaGraph, RefusedCallInsideCaptureIsAnError) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  cuda::Graph graph;
  try {
    graph.capture(ctx, [&] { ctx.synchronize(); });
    ADD_FAILURE() << "a stream synchronisation was captured";
  } catch (const pgolf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaStreamSynchronize"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(graph.ready());
  expect_stream_usable(ctx, graph);
}

}  // namespace
