#pragma once
// Backend-parameterised tests skip a backend this machine cannot run (no GPU, not built) and run
// every other one, so that a backend that is there but broken fails instead of skipping.
#include <optional>
#include <string>
#include <string_view>

#include "torchless/backends/backend.h"

namespace torchless::test {

// "backend <name> is unavailable: <discover_backends()'s reason>", or nothing where it can run.
inline std::optional<std::string> backend_unavailable(std::string_view name) {
  for (const BackendInfo& info : discover_backends()) {
    if (info.name == name && !info.available) {
      return "backend " + info.name + " is unavailable: " + info.detail;
    }
  }
  return std::nullopt;
}

}  // namespace torchless::test
