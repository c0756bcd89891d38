#include "core/device.h"

#include "core/error.h"
#ifdef PGOLF_HAVE_CUDA
#include "core/cuda/runtime.h"
#endif

namespace pgolf {

bool built_with_cuda() {
#ifdef PGOLF_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

namespace {
int gpus() {
#ifdef PGOLF_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}
}  // namespace

DeviceChoice resolve_device(const std::string& requested) {
  PGOLF_CHECK(requested == "auto" || requested == "cpu" || requested == "cuda",
              "--device must be auto, cpu or cuda, not '", requested, "'");
  if (requested == "cpu") return {Device::kCpu, ""};
  if (requested == "cuda") {
    PGOLF_CHECK(built_with_cuda(), "--device cuda: this pgolf was built without the CUDA "
                                   "backend (configure with -DPGOLF_CUDA=ON where nvcc is installed)");
    PGOLF_CHECK(gpus() > 0, "--device cuda: no CUDA GPU found (no driver, or no device visible "
                            "to this process)");
    return {Device::kCuda, ""};
  }
  if (gpus() > 0) return {Device::kCuda, ""};
  return {Device::kCpu, built_with_cuda() ? "no CUDA GPU found; running on the CPU" : ""};
}

const char* device_name(Device d) { return d == Device::kCuda ? "cuda" : "cpu"; }

}  // namespace pgolf
