// The load-time memory check of the Metal backend (metal_memory_plan.h): plain C++, so it
// is tested here on every host.
#include "torchless/backends/metal/metal_memory_plan.h"

#include <gtest/gtest.h>

namespace torchless::metal {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(MetalMemoryPlan, SmallPlanFitsSilently) {
  const MetalMemoryPlan plan{3 * kGiB + 123 * kMiB, 512 * kMiB, 77 * kMiB};
  const MemoryPlanCheck check = check_memory_plan(plan, 10 * kGiB + 5 * kMiB, 16 * kGiB);
  EXPECT_EQ(check.verdict, MemoryPlanVerdict::Fits);
  EXPECT_TRUE(check.message.empty());
  EXPECT_EQ(enforce_memory_plan(plan, 10 * kGiB, 16 * kGiB), "");
}

TEST(MetalMemoryPlan, UnknownWorkingSetNeverRefuses) {
  const MetalMemoryPlan plan{900 * kGiB, 1, 1};
  EXPECT_EQ(check_memory_plan(plan, 0, 0).verdict, MemoryPlanVerdict::Fits);
}

TEST(MetalMemoryPlan, PlanAboveNinetyPercentWarnsButLoads) {
  const uint64_t working_set = 10 * kGiB + 333 * kMiB;
  const MetalMemoryPlan plan{working_set - 700 * kMiB, 300 * kMiB, 101 * kMiB};
  const MemoryPlanCheck check = check_memory_plan(plan, working_set, 16 * kGiB);
  EXPECT_EQ(check.verdict, MemoryPlanVerdict::Tight);
  EXPECT_NE(check.message.find("fits"), std::string::npos) << check.message;
  EXPECT_EQ(enforce_memory_plan(plan, working_set, 16 * kGiB), check.message);
}

TEST(MetalMemoryPlan, PlanAboveWorkingSetSuggestsTheWiredLimit) {
  // 11.0 GiB on a 16 GiB Mac with a 10.7 GiB working set: raising the limit to plan + 1 GiB
  // (12288 MiB after rounding) still leaves macOS its 2 GiB.
  const MetalMemoryPlan plan{9 * kGiB + 512 * kMiB, 1 * kGiB, 512 * kMiB};
  const uint64_t working_set = 10 * kGiB + 700 * kMiB;
  const MemoryPlanCheck check = check_memory_plan(plan, working_set, 16 * kGiB);
  ASSERT_EQ(check.verdict, MemoryPlanVerdict::TooLarge);
  EXPECT_NE(check.message.find("11.0 GiB (weights 9.5 GiB + KV cache 1.0 GiB + scratch 0.5 GiB)"),
            std::string::npos)
      << check.message;
  EXPECT_NE(check.message.find("sudo sysctl iogpu.wired_limit_mb=12288"), std::string::npos)
      << check.message;
  try {
    enforce_memory_plan(plan, working_set, 16 * kGiB);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("iogpu.wired_limit_mb"), std::string::npos);
  }
}

TEST(MetalMemoryPlan, PlanLargerThanTheMacSaysNoSettingHelps) {
  const MetalMemoryPlan plan{14 * kGiB + 3 * kMiB, 2 * kGiB, 300 * kMiB};
  const MemoryPlanCheck check = check_memory_plan(plan, 11 * kGiB, 16 * kGiB);
  ASSERT_EQ(check.verdict, MemoryPlanVerdict::TooLarge);
  EXPECT_EQ(check.message.find("sysctl"), std::string::npos) << check.message;
  EXPECT_NE(check.message.find("--backend cpu"), std::string::npos) << check.message;
}

TEST(MetalMemoryPlan, SuggestedLimitRoundsUpToWholeMebibytes) {
  EXPECT_EQ(detail::suggested_wired_limit_mib(5 * kGiB + 1, 0), 5 * 1024 + 1024 + 1);
  EXPECT_EQ(detail::suggested_wired_limit_mib(5 * kGiB, 0), 6 * 1024);
  // Capped at RAM - 2 GiB.
  EXPECT_EQ(detail::suggested_wired_limit_mib(7 * kGiB, 8 * kGiB), 6 * 1024);
}

TEST(MetalMemoryPlan, PhysicalMemoryIsReported) {
  EXPECT_GT(physical_memory_bytes(), 64 * kMiB);
}

}  // namespace
}  // namespace torchless::metal
