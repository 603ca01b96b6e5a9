#include "torchless/backends/metal/metal_factory.h"

#include "torchless/backends/metal/metal_backend.h"
#include "torchless/core/error.h"

namespace torchless {

std::unique_ptr<Backend> make_metal_backend(const BackendOptions&, bool emulated) {
  if (!emulated) return std::make_unique<MetalBackend>();
#if defined(TORCHLESS_HAS_METAL_EMULATOR)
  return std::make_unique<MetalBackend>(metal::create_emulated_metal_device(), "metal-emulated");
#else
  fail("metal-emulated is not built (TORCHLESS_METAL_EMULATOR=OFF)");
#endif
}

BackendInfo metal_backend_info() {
  return MetalBackend::info();
}

BackendInfo metal_emulated_backend_info() {
  BackendInfo info;
  info.name = "metal-emulated";
#if defined(TORCHLESS_HAS_METAL_EMULATOR)
  info.available = true;
  info.detail = "Metal kernels run on the CPU by the MSL emulator (testing only, slow)";
#else
  info.detail = "not built (TORCHLESS_METAL_EMULATOR=OFF)";
#endif
  return info;
}

}  // namespace torchless
