// `torchless backends`: every backend this build knows, whether it can run here, and the
// device it would use or the reason it cannot.
#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/backends/backend.h"

namespace torchless::app {
namespace {

int run_backends() {
  for (const BackendInfo& info : discover_backends()) {
    fmt::print("{:<16} {:<14} {}\n", info.name, info.available ? "available" : "unavailable",
               info.detail);
  }
  return 0;
}

const bool registered = register_command({
    "backends",
    "List the compute backends and whether they can run on this machine",
    [](CLI::App&) -> std::function<int()> { return run_backends; },
});

}  // namespace
}  // namespace torchless::app
