#pragma once
// The load-time memory check of the Metal backend: does weights + KV cache + scratch fit in
// what macOS lets the GPU keep resident (recommendedMaxWorkingSetSize, roughly 2/3 to 3/4 of
// RAM)? Models near that ceiling otherwise fail mid-generation with "Insufficient Memory
// (kIOGPUCommandBufferCallbackErrorOutOfMemory)" (llama.cpp #6114, #5206), so we refuse at
// load with numbers and the remedy instead. Plain C++ (no Metal), so it is tested on Linux.
#include <algorithm>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "torchless/backends/backend.h"
#include "torchless/core/error.h"
#include "torchless/core/system_memory.h"

namespace torchless::metal {

using MetalMemoryPlan = MemoryPlan;

enum class MemoryPlanVerdict {
  Fits,      // comfortably inside the working set
  Tight,     // above kTightFraction of it: works, but other GPU users may push it out
  TooLarge,  // above the working set: refuse
};

struct MemoryPlanCheck {
  MemoryPlanVerdict verdict = MemoryPlanVerdict::Fits;
  std::string message;  // empty when Fits
};

inline constexpr double kTightFraction = 0.9;

namespace detail {

// The wired limit to suggest: the plan plus 1 GiB of headroom, in MiB, but never within 2 GiB
// of physical memory (macOS itself needs that much; 0 = RAM unknown).
inline uint64_t suggested_wired_limit_mib(uint64_t plan_bytes, uint64_t physical_bytes) {
  constexpr uint64_t kMiB = 1024 * 1024;
  uint64_t want = (plan_bytes + 1024 * kMiB + kMiB - 1) / kMiB;
  if (physical_bytes > 0) {
    uint64_t ceiling = physical_bytes > 2048 * kMiB ? physical_bytes / kMiB - 2048 : 0;
    want = std::min(want, ceiling);
  }
  return want;
}

}  // namespace detail

// working_set: MTLDevice.recommendedMaxWorkingSetSize (0 = unknown: always Fits).
// physical_bytes: installed RAM (0 = unknown), used to say when no setting can help.
inline MemoryPlanCheck check_memory_plan(const MetalMemoryPlan& plan, uint64_t working_set,
                                         uint64_t physical_bytes = 0) {
  MemoryPlanCheck check;
  const uint64_t total = plan.total();
  if (working_set == 0 || total <= static_cast<uint64_t>(kTightFraction * working_set)) {
    return check;
  }
  const std::string parts = fmt::format("{} (weights {} + KV cache {} + scratch {})", gib(total, 1),
                                        gib(plan.weight_bytes, 1), gib(plan.kv_cache_bytes, 1),
                                        gib(plan.scratch_bytes, 1));
  if (total <= working_set) {
    check.verdict = MemoryPlanVerdict::Tight;
    check.message = fmt::format(
        "the model needs {} of the {} macOS lets the GPU use; it fits, but other apps using "
        "the GPU may slow it down",
        parts, gib(working_set, 1));
    return check;
  }
  check.verdict = MemoryPlanVerdict::TooLarge;
  const uint64_t limit_mib = detail::suggested_wired_limit_mib(total, physical_bytes);
  const bool raising_helps =
      physical_bytes == 0 || limit_mib * 1024 * 1024 >= total + (uint64_t{512} << 20);
  if (raising_helps) {
    check.message = fmt::format(
        "the model needs {} on the GPU but macOS lets the GPU use only {} "
        "(recommendedMaxWorkingSetSize). Use a smaller context size or a more quantised "
        "model, or raise the limit until the next reboot with: sudo sysctl "
        "iogpu.wired_limit_mb={}",
        parts, gib(working_set, 1), limit_mib);
  } else {
    check.message = fmt::format(
        "the model needs {} on the GPU but macOS lets the GPU use only {} of this Mac's {} "
        "of memory. Use a smaller context size or a more quantised model, or run on the CPU "
        "(--backend cpu)",
        parts, gib(working_set, 1), gib(physical_bytes, 1));
  }
  return check;
}

// Throws Error when the plan does not fit; returns the warning text when it is tight (empty
// when it fits), for the caller to log.
inline std::string enforce_memory_plan(const MetalMemoryPlan& plan, uint64_t working_set,
                                       uint64_t physical_bytes = 0) {
  MemoryPlanCheck check = check_memory_plan(plan, working_set, physical_bytes);
  if (check.verdict == MemoryPlanVerdict::TooLarge) {
    throw Error("metal: " + check.message);
  }
  return check.message;
}

}  // namespace torchless::metal
