// The Apple device layer's stub, compiled instead of apple/ when the build has no Apple Metal
// (not an Apple platform, or TORCHLESS_METAL off): no device, and the reason says so.
#include "torchless/backends/backend_registry.h"
#include "torchless/backends/metal/metal_device.h"
#include "torchless/core/error.h"

namespace torchless::metal {

bool apple_metal_available(std::string* reason) {
  if (reason != nullptr) *reason = not_built_message(BuildOption::Metal);
  return false;
}

bool apple_metal_device_present() {
  return false;
}

std::unique_ptr<MetalDevice> create_apple_metal_device(bool /*gate*/) {
  fail("{}", not_built_message(BuildOption::Metal));
}

}  // namespace torchless::metal
