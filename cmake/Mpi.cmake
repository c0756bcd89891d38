# MPI for the data-parallel path (issue 8, docs/distributed.md): OpenMPI from Debian
# (libopenmpi-dev). PGOLF_MPI=AUTO builds it when MPI is found, ON requires it, OFF leaves a
# binary that runs as one process only (and refuses a launch by mpirun).
set(PGOLF_MPI AUTO CACHE STRING "Build the MPI data-parallel path (AUTO, ON or OFF)")
set_property(CACHE PGOLF_MPI PROPERTY STRINGS AUTO ON OFF)

# Only the C API is used (MPI_CXX_SKIP_MPICXX: no deprecated C++ bindings).
set(MPI_CXX_SKIP_MPICXX ON)

# Sets PGOLF_MPI_ENABLED in the caller's scope.
function(pgolf_use_mpi target)
  set(PGOLF_MPI_ENABLED OFF PARENT_SCOPE)
  if(PGOLF_MPI STREQUAL "OFF")
    message(STATUS "MPI: off (PGOLF_MPI=OFF): single-process build")
    return()
  endif()
  if(PGOLF_MPI STREQUAL "ON")
    find_package(MPI REQUIRED COMPONENTS CXX)
  else()
    find_package(MPI COMPONENTS CXX)
  endif()
  if(MPI_CXX_FOUND)
    message(STATUS "MPI: ${MPI_CXX_LIBRARIES} (MPI ${MPI_CXX_VERSION})")
    target_link_libraries(${target} PUBLIC MPI::MPI_CXX)
    target_compile_definitions(${target} PUBLIC PGOLF_HAVE_MPI=1)
    set(PGOLF_MPI_ENABLED ON PARENT_SCOPE)
  else()
    message(STATUS "MPI: not found: single-process build (install libopenmpi-dev for mpirun)")
  endif()
endfunction()
