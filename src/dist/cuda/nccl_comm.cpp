#include "dist/cuda/nccl_comm.h"

#include <span>

#include "core/cuda/runtime.h"
#include "core/error.h"

namespace pgolf::dist {
namespace {

void check(ncclResult_t r, const char* call) {
  if (r != ncclSuccess) fail("NCCL call ", call, " failed: ", ncclGetErrorString(r));
}

size_t as_size(int64_t n) {
  PGOLF_CHECK(n >= 0, "an NCCL collective cannot take ", n, " elements");
  return size_t(n);
}

}  // namespace

NcclComm::NcclComm(const Comm& host) : host_(host) {
  const int devices = cuda::device_count();
  PGOLF_CHECK(devices > 0, "rank ", host.rank(), " sees no CUDA GPU, so it cannot join the "
              "NCCL communicator");
  device_ = host.local_rank() % devices;
  cuda::check(cudaSetDevice(device_), "cudaSetDevice");
  ncclUniqueId id{};
  if (host.root()) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  host.broadcast(std::span<char>(id.internal, sizeof id.internal));
  const Comm::Watch watch(host, "joining the NCCL communicator");
  check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "ncclCommInitRank");
}

NcclComm::~NcclComm() {
  if (comm_) ncclCommDestroy(comm_);
}

void NcclComm::all_reduce_sum(float* x, int64_t n, cudaStream_t stream) {
  check(ncclAllReduce(x, x, as_size(n), ncclFloat32, ncclSum, comm_, stream), "ncclAllReduce");
}

void NcclComm::reduce_scatter_sum(const float* send, float* recv, int64_t piece,
                                  cudaStream_t stream) {
  check(ncclReduceScatter(send, recv, as_size(piece), ncclFloat32, ncclSum, comm_, stream),
        "ncclReduceScatter");
}

void NcclComm::all_gather(const float* mine, float* all, int64_t piece, cudaStream_t stream) {
  check(ncclAllGather(mine, all, as_size(piece), ncclFloat32, comm_, stream), "ncclAllGather");
}

void NcclComm::wait(cudaStream_t stream, const char* what) {
  const Comm::Watch watch(host_, what);
  cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  ncclResult_t async = ncclSuccess;
  check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
  check(async, what);
}

}  // namespace pgolf::dist
