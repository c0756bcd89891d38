// CUDA graphs (see graph.h).
#include "core/cuda/graph.h"

namespace pgolf::cuda {

void Graph::begin_capture(Context& ctx) {
  PGOLF_CUDA_CHECK(cudaStreamBeginCapture(ctx.stream(), cudaStreamCaptureModeThreadLocal));
}

// The captured graph is only a template: the executable instance is independent of it, so
// it is destroyed at once. A capture that a refused call invalidated fails at EndCapture.
void Graph::end_capture(Context& ctx) {
  cudaGraph_t graph = nullptr;
  const char* call = "cudaStreamEndCapture";
  cudaError_t status = cudaStreamEndCapture(ctx.stream(), &graph);
  if (status == cudaSuccess) {
    call = "cudaGraphInstantiate";
    status = cudaGraphInstantiate(&exec_, graph, 0);
  }
  if (graph) cudaGraphDestroy(graph);
  if (status == cudaSuccess) return;
  exec_ = nullptr;
  cudaGetLastError();  // reported here, not again by the next check_launch
  check(status, call);
}

// Ends a capture that threw: the partial graph (if any) is dropped, and so is the error a
// refused call left behind, so that the next check_launch does not report it.
void Graph::abandon_capture(Context& ctx) noexcept {
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(ctx.stream(), &graph) == cudaSuccess && graph)
    cudaGraphDestroy(graph);
  cudaGetLastError();
}

void Graph::launch(Context& ctx) {
  PGOLF_CHECK(ready(), "internal: launching a CUDA graph that was not captured");
  PGOLF_CUDA_CHECK(cudaGraphLaunch(exec_, ctx.stream()));
}

void Graph::reset() noexcept {
  if (exec_) cudaGraphExecDestroy(exec_);
  exec_ = nullptr;
}

}  // namespace pgolf::cuda
