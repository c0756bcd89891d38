// The CUDA runtime layer (see runtime.h).
#include "core/cuda/runtime.h"

#include <atomic>

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

namespace {
std::atomic<int64_t> g_allocated{0}, g_peak{0};
}  // namespace

void detail::count_allocation(int64_t bytes) {
  const int64_t now = g_allocated += bytes;
  int64_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
int64_t allocated_bytes() { return g_allocated.load(); }
int64_t peak_allocated_bytes() { return g_peak.load(); }

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
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    PGOLF_CUDA_CHECK(cudaStreamIsCapturing(stream_, &capture));
    PGOLF_CHECK(capture == cudaStreamCaptureStatusNone, "the CUDA scratch would grow from ",
                scratch_.size(), " to ", n, " floats inside a CUDA graph capture: run the "
                "captured work once eagerly first, so that it sizes the scratch");
    synchronize();
    scratch_.resize(n);
    ++scratch_generation_;
  }
  return scratch_.data();
}

Event::Event() { PGOLF_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }

Event::~Event() { cudaEventDestroy(event_); }

void Event::record(cudaStream_t stream) { PGOLF_CUDA_CHECK(cudaEventRecord(event_, stream)); }

void Event::synchronize() const { PGOLF_CUDA_CHECK(cudaEventSynchronize(event_)); }

void Context::synchronize() const { PGOLF_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace pgolf::cuda
