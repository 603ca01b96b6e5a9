// The CUDA backend's stub, compiled instead of cuda_factory.cpp in builds without CUDA
// (TORCHLESS_CUDA=OFF, or AUTO where no toolkit was found).
#include "torchless/backends/backend_registry.h"

namespace torchless {

BackendEntry cuda_backend_entry() {
  return not_built_entry("cuda", BuildOption::Cuda);
}

}  // namespace torchless
