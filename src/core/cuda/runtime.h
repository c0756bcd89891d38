// The CUDA runtime layer of the CUDA backend (issue 7): CUDA and cuBLAS statuses turned into
// pgolf::Error, the device count (0 without a driver or GPU, never an exception), an owning
// typed device array, and the per-device context every CUDA kernel wrapper takes (a stream,
// a cuBLASLt handle with its workspace, and fp32 scratch for deterministic reductions).
// A plain C++ header: .cpp files include it without nvcc.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <span>
#include <utility>

#include "core/error.h"

namespace pgolf::cuda {

// Activations and matmul operands on the GPU (SPEC mixed precision: bf16 storage, fp32 math).
using bf16 = __nv_bfloat16;

// A pgolf::Error "CUDA call <call> failed: <reason> (<name>)" unless status is success.
void check(cudaError_t status, const char* call);
void check(cublasStatus_t status, const char* call);
#define PGOLF_CUDA_CHECK(call) ::pgolf::cuda::check((call), #call)

// After a kernel launch: a bad configuration (or an earlier asynchronous fault) as an Error
// naming the kernel.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// The number of usable CUDA devices; 0 when there is no driver, no GPU or any other failure.
int device_count();

// An owned array of n T in device memory, zero-initialised (as pgolf::Buffer on the host).
// Host copies are synchronous: they run on `stream` and wait for it, so the host span may be
// reused at once and everything queued before on that stream is done.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t n) { resize(n); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  // Reallocates to n zeroed elements (the old contents are dropped).
  void resize(int64_t n) {
    PGOLF_CHECK(n >= 0, "a device buffer cannot have ", n, " elements");
    release();
    if (n == 0) return;
    void* p = nullptr;
    check(cudaMalloc(&p, size_t(n) * sizeof(T)), "cudaMalloc");
    data_ = static_cast<T*>(p);
    size_ = n;
    check(cudaMemset(data_, 0, bytes()), "cudaMemset");
  }

  void upload(std::span<const T> host, cudaStream_t stream = nullptr) {
    PGOLF_CHECK(int64_t(host.size()) == size_, "uploading ", host.size(),
                " elements into a device buffer of ", size_);
    if (size_ == 0) return;
    check(cudaMemcpyAsync(data_, host.data(), bytes(), cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync (host to device)");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  void download(std::span<T> host, cudaStream_t stream = nullptr) const {
    PGOLF_CHECK(int64_t(host.size()) == size_, "downloading a device buffer of ", size_,
                " elements into ", host.size());
    if (size_ == 0) return;
    check(cudaMemcpyAsync(host.data(), data_, bytes(), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync (device to host)");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return size_; }
  size_t bytes() const { return size_t(size_) * sizeof(T); }

 private:
  // cudaFree's status is dropped: a destructor cannot throw, and at process exit the
  // runtime may already be gone.
  void release() noexcept {
    if (data_) cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// One device's working set: the current device is set to it, a stream all wrappers queue
// on, a cuBLASLt handle, its workspace, and fp32 scratch. Not thread-safe; one per host
// thread driving a device.
class Context {
 public:
  // 32 MiB: NVIDIA's suggested cuBLASLt workspace on Hopper.
  static constexpr int64_t kDefaultWorkspaceBytes = int64_t(32) << 20;

  explicit Context(int device = 0, int64_t workspace_bytes = kDefaultWorkspaceBytes);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  cublasLtHandle_t lt() const { return lt_; }
  void* workspace() { return workspace_.data(); }
  int64_t workspace_bytes() const { return workspace_.size(); }

  // At least n floats of device scratch for a kernel's partial results (e.g. a
  // deterministic column sum in two passes). Valid until the next call: work queued on
  // stream() is ordered, and growing frees the old block only once the stream is idle.
  float* scratch(int64_t n);

  // Waits for everything queued on the stream; a fault in it becomes an Error.
  void synchronize() const;

 private:
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  DeviceBuffer<unsigned char> workspace_;
  DeviceBuffer<float> scratch_;
};

}  // namespace pgolf::cuda
