// The Metal backend's stub, compiled instead of the whole backend when neither of its device
// layers is built (TORCHLESS_METAL off or not Apple, and TORCHLESS_METAL_EMULATOR off).
#include <fmt/format.h>

#include "torchless/backends/backend_registry.h"
#include "torchless/backends/metal/metal_selftest.h"

namespace torchless {

BackendEntry metal_backend_entry() {
  return not_built_entry("metal", BuildOption::Metal);
}

BackendEntry metal_emulated_backend_entry() {
  return not_built_entry("metal-emulated", BuildOption::MetalEmulator);
}

namespace metal {

int run_metal_selftest(const MetalSelftestOptions& options) {
  fmt::print("metal-selftest: {}\n",
             not_built_message(options.emulated ? BuildOption::MetalEmulator : BuildOption::Metal));
  return kSelftestUnavailable;
}

}  // namespace metal
}  // namespace torchless
