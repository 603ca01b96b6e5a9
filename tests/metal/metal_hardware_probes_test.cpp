// The probes metal-selftest runs on a Mac first, run here on the emulated device: they must
// find the emulator's own assumptions (so a difference on a GPU is the GPU's), at both
// simdgroup widths, and a deliberately wrong expectation must be reported as such.
#include "torchless/backends/metal/metal_hardware_probes.h"
#include "metal_test_support.h"

namespace torchless::metal_test {
namespace {

class MetalHardwareProbesTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MetalHardwareProbesTest, TheEmulatorSatisfiesItsOwnAssumptions) {
  metal::EmulatedMetalOptions options;
  options.simd_width = GetParam();
  auto device = metal::create_emulated_metal_device(options);
  const auto outcomes = metal::probe_emulator_assumptions(*device);
  ASSERT_EQ(outcomes.size(), 3u);
  for (const metal::ProbeOutcome& o : outcomes) {
    EXPECT_TRUE(o.holds) << o.assumption << ": " << o.observed;
    EXPECT_TRUE(o.observed.empty()) << o.observed;
  }
  EXPECT_NE(outcomes[2].assumption.find("width " + std::to_string(GetParam())), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(SimdWidths, MetalHardwareProbesTest, ::testing::Values(32u, 64u),
                         [](const auto& info) { return "simd" + std::to_string(info.param); });

}  // namespace
}  // namespace torchless::metal_test
