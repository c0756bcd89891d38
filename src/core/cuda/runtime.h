// The CUDA runtime layer of the CUDA backend (issue 7): CUDA and cuBLAS statuses turned into
// pgolf::Error, the device count (0 without a driver or GPU, never an exception), owning
// typed device and pinned host arrays, events, and the per-device context every CUDA kernel
// wrapper takes (a stream, a cuBLASLt handle with its workspace, and fp32 scratch for
// deterministic reductions).
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

// Device bytes held by DeviceBuffers now, and the most held at once since the process
// started: what a run reports as its peak memory. Counted as torch.cuda.max_memory_allocated
// counts: the allocations, not the CUDA context, the cuBLASLt handle or instantiated graphs.
int64_t allocated_bytes();
int64_t peak_allocated_bytes();
namespace detail {
void count_allocation(int64_t bytes);  // +bytes on allocation, -bytes on release
}

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
    detail::count_allocation(int64_t(bytes()));
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
    if (data_) {
      cudaFree(data_);
      detail::count_allocation(-int64_t(bytes()));
    }
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// n T of page-locked host memory (cudaMallocHost), uninitialised: the source of asynchronous
// host-to-device copies. From pageable memory the driver stages such a copy itself,
// synchronously, so the host cannot run ahead of it.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // Reallocates to n elements (the old contents are dropped). No copy may still read the old
  // block: the caller waits for them first (an Event).
  void resize(int64_t n) {
    PGOLF_CHECK(n >= 0, "a pinned host buffer cannot have ", n, " elements");
    release();
    if (n == 0) return;
    void* p = nullptr;
    check(cudaMallocHost(&p, size_t(n) * sizeof(T)), "cudaMallocHost");
    data_ = static_cast<T*>(p);
    size_ = n;
  }

  T* data() { return data_; }
  int64_t size() const { return size_; }

 private:
  void release() noexcept {  // status dropped, as DeviceBuffer's
    if (data_) cudaFreeHost(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// A CUDA event without timing: marks a point of a stream the host can wait for, e.g. the end
// of the copies out of a PinnedBuffer before it is overwritten.
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(cudaStream_t stream);
  // Waits until the work queued before the last record() is done; at once if never recorded.
  void synchronize() const;

 private:
  cudaEvent_t event_ = nullptr;
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
  // Growing is an Error while stream() is being captured into a CUDA graph (it would wait
  // for the stream and allocate): one eager run of the captured work sizes the scratch first.
  float* scratch(int64_t n);
  // Counts the scratch reallocations: a CUDA graph captured before a change holds the address
  // of a freed block and must be captured again.
  uint64_t scratch_generation() const { return scratch_generation_; }

  // Waits for everything queued on the stream; a fault in it becomes an Error.
  void synchronize() const;

 private:
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  DeviceBuffer<unsigned char> workspace_;
  DeviceBuffer<float> scratch_;
  uint64_t scratch_generation_ = 0;
};

}  // namespace pgolf::cuda
