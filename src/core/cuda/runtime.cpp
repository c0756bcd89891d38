// The CUDA runtime layer (see runtime.h).
#include "core/cuda/runtime.h"

namespace pgolf::cuda {

void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  fail("CUDA call ", call, " failed: ", cudaGetErrorString(status), " (", cudaGetErrorName(status),
       ")");
}

void check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("cuBLAS call ", call, " failed: ", cublasLtGetStatusString(status), " (",
       cublasLtGetStatusName(status), ")");
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear it, so the next check_launch does not report it
    return 0;
  }
  return count;
}

Context::Context(int device, int64_t workspace_bytes) : device_(device) {
  const int count = device_count();
  PGOLF_CHECK(device >= 0 && device < count, "CUDA device ", device, " does not exist (",
              count, " found)");
  PGOLF_CUDA_CHECK(cudaSetDevice(device));
  // A blocking stream: it orders with the legacy default stream, which DeviceBuffer's
  // allocation-time memset uses.
  PGOLF_CUDA_CHECK(cudaStreamCreate(&stream_));
  try {
    PGOLF_CUDA_CHECK(cublasLtCreate(&lt_));
    workspace_.resize(workspace_bytes);
  } catch (...) {
    if (lt_) cublasLtDestroy(lt_);
    cudaStreamDestroy(stream_);
    throw;
  }
}

Context::~Context() {
  cudaStreamSynchronize(stream_);  // no kernel may still use the buffers freed next
  cublasLtDestroy(lt_);
  cudaStreamDestroy(stream_);
}

float* Context::scratch(int64_t n) {
  if (scratch_.size() < n) {
    synchronize();
    scratch_.resize(n);
  }
  return scratch_.data();
}

void Context::synchronize() const { PGOLF_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace pgolf::cuda
