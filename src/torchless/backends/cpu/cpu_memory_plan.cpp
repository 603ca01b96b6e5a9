// The CPU backend's load-time memory check. Weights stay in the mapped file, so a model larger
// than memory still runs (slowly, paging from disk); the KV cache and scratch are allocated
// and written, so they must fit in physical memory or the machine swaps to a standstill.
#include <fmt/format.h>

#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/core/error.h"
#include "torchless/core/system_memory.h"

namespace torchless {
namespace {

// Leave room for the OS and other programs before calling a plan a fit.
constexpr double kUsableFraction = 0.8;

}  // namespace

std::string CpuBackend::check_memory_plan(const MemoryPlan& plan) const {
  const uint64_t physical = physical_memory_bytes();
  if (physical == 0) return {};
  const auto usable = static_cast<uint64_t>(kUsableFraction * static_cast<double>(physical));
  const uint64_t allocated = plan.kv_cache_bytes + plan.scratch_bytes;
  if (allocated > usable) {
    fail(
        "cpu: the KV cache ({}) and scratch ({}) need {} but this machine has {} of memory: "
        "use a smaller context with --ctx (an F32 KV cache takes twice the F16 one)",
        gib(plan.kv_cache_bytes), gib(plan.scratch_bytes), gib(allocated), gib(physical));
  }
  if (plan.total() > usable) {
    return fmt::format(
        "the model needs {} (weights {} + KV cache {} + scratch {}) of this machine's {}: "
        "the weights will be read from disk as they are used, which is slow; a smaller or "
        "more quantised model would fit",
        gib(plan.total()), gib(plan.weight_bytes), gib(plan.kv_cache_bytes),
        gib(plan.scratch_bytes), gib(physical));
  }
  return {};
}

}  // namespace torchless
