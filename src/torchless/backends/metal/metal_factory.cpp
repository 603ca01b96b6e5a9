// The Metal backend's registry entries: "metal" over the Apple device layer and
// "metal-emulated" over the emulated one. Each device layer a build lacks is a stub
// (no_apple.cpp, no_emulator.cpp) that reports itself unavailable.
#include <cstdio>
#include <utility>

#include "torchless/backends/backend_registry.h"
#include "torchless/backends/metal/metal_backend.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

// Once per process, however many backends a tool opens.
void warn_emulated_is_slow() {
  static bool warned = false;
  if (!std::exchange(warned, true)) {
    std::fprintf(stderr,
                 "warning: metal-emulated runs the Metal kernels on a CPU emulator of the GPU, "
                 "for testing; it is far slower than --backend cpu\n");
  }
}

}  // namespace

BackendEntry metal_backend_entry() {
  return {"metal", &MetalBackend::info,
          [](const BackendOptions& options) -> std::unique_ptr<Backend> {
            const BackendInfo info = MetalBackend::info();
            if (!info.available) fail("the Metal backend is unavailable: {}", info.detail);
            auto backend = std::make_unique<MetalBackend>();
            backend->set_batch_invariant(options.batch_invariant);
            return backend;
          }};
}

BackendEntry metal_emulated_backend_entry() {
  return {"metal-emulated",
          [] {
            BackendInfo info{"metal-emulated", false, {}};
            info.available = metal::emulated_metal_available(&info.detail);
            return info;
          },
          [](const BackendOptions& options) -> std::unique_ptr<Backend> {
            warn_emulated_is_slow();
            auto backend = std::make_unique<MetalBackend>(metal::create_emulated_metal_device(),
                                                          "metal-emulated");
            backend->set_batch_invariant(options.batch_invariant);
            return backend;
          }};
}

}  // namespace torchless
