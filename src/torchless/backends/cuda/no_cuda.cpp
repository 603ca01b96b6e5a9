// The CUDA backend's stub: torchless has no CUDA backend yet. When it exists, CMake compiles
// its cuda_factory.cpp (defining cuda_backend_entry()) instead of this file.
#include "torchless/backends/backend_registry.h"

namespace torchless {

BackendEntry cuda_backend_entry() {
  return not_built_entry("cuda", BuildOption::Cuda);
}

}  // namespace torchless
