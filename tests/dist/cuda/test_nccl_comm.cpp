// The NCCL path of data parallelism (issue 8, dist/cuda/nccl_comm.h) with the ranks one
// process has: a world of one, so every collective must leave the data as it was (sum over
// one rank, one piece scattered and gathered) — which still runs NCCL's bootstrap, the
// device choice and each collective on the GPU. Skipped, visibly, without a GPU.
#include <gtest/gtest.h>

#ifdef PGOLF_HAVE_NCCL
#include <vector>

#include "core/cuda/runtime.h"
#include "dist/comm.h"
#include "dist/cuda/nccl_comm.h"

namespace {

TEST(CudaNccl, WorldOfOneCollectivesKeepTheData) {
  if (pgolf::cuda::device_count() == 0)
    GTEST_SKIP() << "no CUDA GPU: the NCCL collectives cannot run on this machine";
  pgolf::dist::NcclComm nccl(pgolf::dist::world());
  EXPECT_EQ(nccl.device(), 0);
  pgolf::cuda::Context ctx(nccl.device());
  std::vector<float> host(1000);
  for (size_t i = 0; i < host.size(); ++i) host[i] = 0.5f * float(i) - 7.0f;
  pgolf::cuda::DeviceBuffer<float> x(int64_t(host.size())), y(int64_t(host.size()));
  x.upload(host, ctx.stream());
  nccl.all_reduce_sum(x.data(), x.size(), ctx.stream());
  nccl.reduce_scatter_sum(x.data(), y.data(), y.size(), ctx.stream());
  nccl.all_gather(y.data(), x.data(), y.size(), ctx.stream());
  nccl.wait(ctx.stream(), "the test's collectives");
  std::vector<float> back(host.size());
  x.download(back, ctx.stream());
  EXPECT_EQ(back, host);
}

}  // namespace
#else
TEST(CudaNccl, BuiltWithoutNccl) {
  GTEST_SKIP() << "this CUDA build has no NCCL (cmake/Nccl.cmake): the GPU collectives are "
                  "not built";
}
#endif
