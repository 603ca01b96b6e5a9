// The CUDA backend's registry entry (in builds with CUDA; otherwise no_cuda.cpp).
#include "torchless/backends/backend_registry.h"
#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/core/error.h"

namespace torchless {

BackendEntry cuda_backend_entry() {
  return {"cuda", &CudaBackend::info,
          [](const BackendOptions& options) -> std::unique_ptr<Backend> {
            const BackendInfo info = CudaBackend::info();
            if (!info.available) fail("the CUDA backend is unavailable: {}", info.detail);
            return std::make_unique<CudaBackend>(options);
          }};
}

}  // namespace torchless
