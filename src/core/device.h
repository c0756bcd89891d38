// Where a command computes (issue 7): `--device auto|cpu|cuda`. `auto` takes the GPU when this
// pgolf was built with CUDA and one is present, else the CPU; a CUDA build on a machine
// without a GPU says so in one line, so nobody mistakes a CPU run for a GPU one.
#pragma once
#include <string>

namespace pgolf {

enum class Device { kCpu, kCuda };

// The device a run uses for `requested` ("auto", "cpu" or "cuda"). "cuda" without a CUDA
// build or without a GPU is a pgolf::Error that says which. `notice` is set when "auto" falls
// back to the CPU in a CUDA build ("no CUDA GPU found; running on the CPU"): the caller says
// it once, where the run reports (a run's log, not stderr, which carries errors alone).
struct DeviceChoice {
  Device device;
  std::string notice;
};
DeviceChoice resolve_device(const std::string& requested);

const char* device_name(Device d);

// True when this binary contains the CUDA backend (cmake -DPGOLF_CUDA=AUTO|ON with nvcc).
bool built_with_cuda();

}  // namespace pgolf
