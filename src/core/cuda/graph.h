// A CUDA graph of work queued on a Context's stream (issue 7: the training micro-step is
// captured once and replayed, so its hundreds of launches cost one). A plain C++ header.
//
// What may be captured: kernel launches, cuBLASLt matmuls (given the Context's workspace),
// device-to-device copies and memsets on ctx.stream(). What may not: waiting for the stream,
// allocating or freeing (Context::scratch refuses to grow during a capture), copies from
// pageable host memory (a copy from pinned memory is captured and reads that memory when the
// graph runs: how the optimizer step takes its per-step scalars). Every pointer and launch argument is baked in at capture: a graph is valid as
// long as the buffers it reads and writes keep their addresses (DeviceModel::generation()).
#pragma once
#include <utility>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

class Graph {
 public:
  Graph() = default;
  ~Graph() { reset(); }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Captures the work `work()` queues on ctx.stream() (nothing runs) and instantiates it,
  // replacing any earlier graph. The capture is thread-local (cudaStreamCaptureModeThreadLocal):
  // other host threads' CUDA calls are unaffected. An exception from `work`, or from a call
  // the capture refuses, ends the capture, leaves no graph and is rethrown; the stream is
  // then usable again.
  template <class F>
  void capture(Context& ctx, F&& work) {
    reset();
    begin_capture(ctx);
    try {
      std::forward<F>(work)();
    } catch (...) {
      abandon_capture(ctx);
      throw;
    }
    end_capture(ctx);
  }

  // Queues one replay on ctx.stream(); an Error when no graph is ready.
  void launch(Context& ctx);
  bool ready() const { return exec_ != nullptr; }
  // Drops the graph (ready() is false after).
  void reset() noexcept;

 private:
  void begin_capture(Context& ctx);
  void end_capture(Context& ctx);
  static void abandon_capture(Context& ctx) noexcept;

  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace pgolf::cuda
