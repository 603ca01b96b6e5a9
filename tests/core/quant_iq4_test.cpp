// IQ4_NL and IQ4_XS: hand-built blocks whose values are computed by hand from the format, and
// round trips of the reference quantiser.
#include "torchless/core/quant_iq4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/quant_test_util.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

using quant_test::dequantize_block;
using quant_test::round_trip;

TEST(QuantIQ4Layout, IQ4_NLMapsLowThenHighNibblesThroughTheLevelTable) {
  BlockIQ4_NL b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(DType::IQ4_NL, b);
  EXPECT_FLOAT_EQ(y[0], -63.5f);   // code 0: -127 / 2
  EXPECT_FLOAT_EQ(y[7], -5.0f);    // code 7: -10 / 2
  EXPECT_FLOAT_EQ(y[8], 0.5f);     // code 8: 1 / 2
  EXPECT_FLOAT_EQ(y[15], 56.5f);   // code 15: 113 / 2
  EXPECT_FLOAT_EQ(y[16], 56.5f);   // high nibble of qs[0]: code 15
  EXPECT_FLOAT_EQ(y[20], 19.0f);   // high nibble of qs[4]: code 11 (38)
  EXPECT_FLOAT_EQ(y[31], -63.5f);  // high nibble of qs[15]: code 0
}

TEST(QuantIQ4Layout, IQ4_XSSubBlockScalesSplitAcrossScalesLAndScalesH) {
  BlockIQ4_XS b{};
  b.d = fp32_to_fp16(0.25f);
  // Sub-block 5: stored scale 45 = 0b10'1101 -> low nibble 13 in the high half of
  // scales_l[2], top bits 2 at bits 10..11 of scales_h; scale 0.25 * (45 - 32) = 3.25.
  b.scales_l[2] = 0xD0;
  b.scales_h = 2u << 10;
  b.qs[16 * 5 + 3] = 0x2F;  // element 163: code 15 (113); element 179: code 2 (-83)
  const std::vector<float> y = dequantize_block(DType::IQ4_XS, b);
  EXPECT_FLOAT_EQ(y[163], 367.25f);
  EXPECT_FLOAT_EQ(y[179], -269.75f);
  EXPECT_FLOAT_EQ(y[160], 3.25f * -127.0f);
  // Sub-block 4 shares scales_l[2] (low half, 0) and has no top bits: scale 0.25 * -32 = -8.
  EXPECT_FLOAT_EQ(y[128], 1016.0f);
  EXPECT_FLOAT_EQ(y[0], 1016.0f);
}

float abs_max(const float* x, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// With S = amax / 127 the ideal scale of a block (its extreme maps to -127), every element is
// within 14 S of a level: the widest gap inside the table is 24 (-127..-104, 89..113) and the
// extreme of the opposite sign, 127 S, is 14 S beyond the last level 113. IQ4_XS stores S as
// a 6-bit multiple of d = (the super-block's largest S) / 31, which moves it by up to d / 2;
// that adds at most (14 + 127) * d / 2 < 0.018 * the super-block's amax (0.04 allowed).
TEST(QuantIQ4RoundTrip, ElementsLandWithinTheWidestLevelGap) {
  constexpr uint32_t kSeed = 4417;
  std::mt19937 rng(kSeed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(256 * 5);
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (1.0f + static_cast<float>(i / 32));
  for (DType type : {DType::IQ4_NL, DType::IQ4_XS}) {
    const std::vector<float> y = round_trip(type, x);
    const size_t super = static_cast<size_t>(dtype_block_size(type));
    const float slack = type == DType::IQ4_XS ? 0.04f : 0.001f;  // NL: fp16 rounding of d
    for (size_t b = 0; b < x.size(); b += 32) {
      const float amax = abs_max(x.data() + b, 32);
      const float super_amax = abs_max(x.data() + b / super * super, super);
      for (size_t i = b; i < b + 32; ++i) {
        ASSERT_LE(std::fabs(x[i] - y[i]), 14.0f / 127.0f * amax + slack * super_amax + 1e-6f)
            << dtype_name(type) << " element " << i << " seed " << kSeed;
      }
    }
  }
}

// The extreme maps exactly to the level -127, so the dequantised block has the same scale and
// quantises to the same codes. (IQ4_XS lacks this: a rounded sub-block scale can move the
// extreme to another level.)
TEST(QuantIQ4RoundTrip, IQ4_NLRequantisesItsOwnOutputExactly) {
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::vector<float> x(512);
  for (float& v : x) v = dist(rng);
  const std::vector<float> once = round_trip(DType::IQ4_NL, x);
  EXPECT_EQ(round_trip(DType::IQ4_NL, once), once);
}

TEST(QuantIQ4RoundTrip, ZeroBlocksStayZero) {
  const std::vector<float> x(256, 0.0f);
  for (DType type : {DType::IQ4_NL, DType::IQ4_XS}) {
    for (float v : round_trip(type, x)) ASSERT_EQ(v, 0.0f) << dtype_name(type);
  }
}

}  // namespace
}  // namespace torchless
