#include "torchless/backends/backend_registry.h"

#include <fmt/format.h>

#include <string_view>

#include "torchless/core/error.h"

namespace torchless {

std::string not_built_message(BuildOption missing) {
  const auto [what, how] = [missing]() -> std::pair<std::string_view, std::string_view> {
    switch (missing) {
      case BuildOption::Metal:
        return {"the Metal backend", "configure with -DTORCHLESS_METAL=ON on macOS"};
      case BuildOption::MetalEmulator:
        return {"the emulated Metal backend", "configure with -DTORCHLESS_METAL_EMULATOR=ON"};
      case BuildOption::Cuda:
        return {"CUDA", "install the CUDA toolkit and configure with -DTORCHLESS_CUDA=ON"};
      case BuildOption::Nccl:
        return {"NCCL", "configure with CUDA where the toolkit's nccl.h is found"};
    }
    return {"an unknown backend", "?"};
  }();
  return fmt::format("torchless was built without {} ({})", what, how);
}

BackendEntry not_built_entry(const std::string& name, BuildOption missing) {
  BackendEntry entry;
  entry.name = name;
  entry.info = [name, missing] { return BackendInfo{name, false, not_built_message(missing)}; };
  entry.make = [missing](const BackendOptions&) -> std::unique_ptr<Backend> {
    fail("{}", not_built_message(missing));
  };
  return entry;
}

}  // namespace torchless
