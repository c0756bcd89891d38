# The CUDA backend (issue 7, docs/cuda.md): src/kernels/cuda/ (kernels, .cu, and their plain
# C++ headers), src/core/cuda/ (the runtime layer: errors, devices, buffers, the
# stream/cuBLASLt context, CUDA graphs), src/model/cuda/ (the model on the GPU), src/eval/cuda/
# (scoring on the GPU) and src/train/cuda/ (the training step on the GPU), added to pgolf_core.
# Included from the top-level CMakeLists.txt after pgolf_core exists; the top level keeps
# every src/*/cuda/ folder out of its source glob, so PGOLF_CUDA=OFF builds exactly the
# CPU-only library (src/dist/cuda/ comes with cmake/Nccl.cmake).
#
#   PGOLF_CUDA=AUTO (default)  build it when nvcc is found (on PATH, $CUDACXX, or /usr/local/cuda)
#   PGOLF_CUDA=ON              build it; a configure error when nvcc is missing
#   PGOLF_CUDA=OFF             CPU only
#
# Architectures: sm_90a machine code (H100/H200; the `a` features are Hopper-only) plus
# compute_80 PTX, which the driver JIT-compiles on any other GPU from Ampere on. Override
# with -DCMAKE_CUDA_ARCHITECTURES=... as usual.
#
# Sets PGOLF_CUDA_ENABLED (tests/CMakeLists.txt uses it for tests/cuda/) and, when on, defines
# PGOLF_HAVE_CUDA=1 for everything that links pgolf_core.

set(PGOLF_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO (when nvcc is found), ON or OFF")
set_property(CACHE PGOLF_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${PGOLF_CUDA}" PGOLF_CUDA_MODE)
if(NOT PGOLF_CUDA_MODE MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "PGOLF_CUDA must be AUTO, ON or OFF, got '${PGOLF_CUDA}'")
endif()

set(PGOLF_CUDA_ENABLED OFF)
if(NOT PGOLF_CUDA_MODE STREQUAL "OFF")
  # nvcc is often not on PATH (the toolkit's default install is /usr/local/cuda/bin), so look
  # there too before enable_language(CUDA), which only reads CMAKE_CUDA_COMPILER / $CUDACXX / PATH.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(PGOLF_NVCC nvcc
      HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES bin
      PATHS /usr/local/cuda/bin)
    if(PGOLF_NVCC)
      set(CMAKE_CUDA_COMPILER "${PGOLF_NVCC}")
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER OR DEFINED ENV{CUDACXX})
    set(PGOLF_CUDA_ENABLED ON)
  elseif(PGOLF_CUDA_MODE STREQUAL "ON")
    message(FATAL_ERROR "PGOLF_CUDA=ON but nvcc was found neither on PATH, in $CUDACXX nor in "
                        "/usr/local/cuda/bin (set CMAKE_CUDA_COMPILER)")
  endif()
endif()

if(NOT PGOLF_CUDA_ENABLED)
  message(STATUS "CUDA backend: off (PGOLF_CUDA=${PGOLF_CUDA}); CPU only")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90a-real 80-virtual)
endif()
enable_language(CUDA)
# CUDA takes pgolf's CXX_STANDARD (20), whose nvcc flag CMake 3.25 does not know yet.
if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
find_package(CUDAToolkit REQUIRED)

# The folders above the kernels call the kernels' wrappers: plain C++.
file(GLOB_RECURSE PGOLF_CUDA_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/src/core/cuda/*.cpp ${CMAKE_SOURCE_DIR}/src/core/cuda/*.cu
  ${CMAKE_SOURCE_DIR}/src/kernels/cuda/*.cpp ${CMAKE_SOURCE_DIR}/src/kernels/cuda/*.cu
  ${CMAKE_SOURCE_DIR}/src/model/cuda/*.cpp ${CMAKE_SOURCE_DIR}/src/eval/cuda/*.cpp
  ${CMAKE_SOURCE_DIR}/src/train/cuda/*.cpp)
target_sources(pgolf_core PRIVATE ${PGOLF_CUDA_SOURCES})
# pgolf_core existed before CUDA was enabled, so its CUDA properties are set here rather than
# initialised from the CMAKE_CUDA_* variables. The shared runtime, once: CUDA::cudart below.
set_target_properties(pgolf_core PROPERTIES
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
  CUDA_RUNTIME_LIBRARY Shared)
target_compile_options(pgolf_core PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>)
target_compile_definitions(pgolf_core PUBLIC PGOLF_HAVE_CUDA=1)
target_link_libraries(pgolf_core PUBLIC CUDA::cudart CUDA::cublasLt)

message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION} at ${CMAKE_CUDA_COMPILER}, "
               "architectures ${CMAKE_CUDA_ARCHITECTURES})")
