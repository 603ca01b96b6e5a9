#pragma once
// Construction of the Metal backend for the backend registry (registry.cpp), which calls these
// only in builds that define TORCHLESS_HAS_METAL or TORCHLESS_HAS_METAL_EMULATOR.
#include <memory>

#include "torchless/backends/backend.h"

namespace torchless {

// emulated = false: the Apple GPU (throws Error saying why when unavailable);
// emulated = true: the Metal backend over the MSL emulator ("metal-emulated"; tests, slow).
std::unique_ptr<Backend> make_metal_backend(const BackendOptions& options, bool emulated);
BackendInfo metal_backend_info();           // the Apple GPU backend: "metal"
BackendInfo metal_emulated_backend_info();  // "metal-emulated"

}  // namespace torchless
