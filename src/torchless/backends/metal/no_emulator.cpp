// The emulated device layer's stub, compiled instead of emulated/ when TORCHLESS_METAL_EMULATOR
// is off: no device, and the reason says so.
#include "torchless/backends/backend_registry.h"
#include "torchless/backends/metal/metal_device.h"
#include "torchless/core/error.h"

namespace torchless::metal {

bool emulated_metal_available(std::string* reason) {
  if (reason != nullptr) *reason = not_built_message(BuildOption::MetalEmulator);
  return false;
}

std::unique_ptr<MetalDevice> create_emulated_metal_device(const EmulatedMetalOptions& /*options*/) {
  fail("{}", not_built_message(BuildOption::MetalEmulator));
}

}  // namespace torchless::metal
