// `torchless metal-selftest [--emulated] [--compile-only] [--seed N] [--filter TEXT]`: the first
// thing to run on a new Mac. The self-test itself is in backends/metal/metal_selftest.h.
#include "torchless/app/command.h"
#include "torchless/backends/metal/metal_selftest.h"

namespace torchless::app {
namespace {

const bool registered = register_command({
    "metal-selftest",
    "Compile every Metal kernel and run the conformance cases against the CPU (exit 2: no GPU)",
    [](CLI::App& sub) -> std::function<int()> {
      auto options = std::make_shared<metal::MetalSelftestOptions>();
      sub.add_flag("--emulated", options->emulated,
                   "Run the Metal kernels through the MSL emulator");
      sub.add_flag("--compile-only", options->compile_only,
                   "Only compile the library and every pipeline, without the GPU-family gate");
      sub.add_option("--seed", options->seed,
                     "Added to every case's seed (0: the conformance suite's inputs)");
      sub.add_option("--filter", options->filter,
                     "Run only the checks whose name contains this text");
      return [options] { return metal::run_metal_selftest(*options); };
    },
});

}  // namespace
}  // namespace torchless::app
