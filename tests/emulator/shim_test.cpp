// The <metal_stdlib> shim used directly from C++: half rounds after every operation and
// promotes like MSL, F16C and the software conversion agree, vectors have Metal's sizes and
// alignment, constructors count components, swizzles read, functions work per component.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

// The shim's keyword macros must not reach anything else: include it last, then unshim.
#include <mslemu_unshim.h>
#include <metal_stdlib>

namespace {

using metal::half;

TEST(Half, ConversionsAgreeWithTheSoftwareFallback) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float hw = metal::detail::f16_to_f32(static_cast<uint16_t>(bits));
    const float sw = metal::detail::f16_to_f32_soft(static_cast<uint16_t>(bits));
    if (std::isnan(hw)) {
      EXPECT_TRUE(std::isnan(sw)) << bits;
      continue;
    }
    ASSERT_EQ(hw, sw) << bits;
    ASSERT_EQ(metal::detail::f32_to_f16(hw), metal::detail::f32_to_f16_soft(hw)) << bits;
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) {
    const float f = dist(rng) * (i % 2 ? 1.0f : 1e-4f);
    ASSERT_EQ(metal::detail::f32_to_f16(f), metal::detail::f32_to_f16_soft(f)) << f << " seed 5";
  }
}

TEST(Half, RoundsAfterEveryOperation) {
  const half one = 1.0f, tiny = 0.0001f;
  EXPECT_EQ(static_cast<float>(one + tiny), 1.0f);  // 1 + 1e-4 rounds back to 1 in half
  EXPECT_NE(static_cast<float>(one) + static_cast<float>(tiny), 1.0f);
  half acc = 0.0f;
  for (int i = 0; i < 3000; ++i) acc += one;
  EXPECT_EQ(static_cast<float>(acc), 2048.0f);  // 2048 + 1 is not representable
  EXPECT_EQ(static_cast<float>(half(1.0f) / half(3.0f)), static_cast<float>(half(1.0f / 3.0f)));
}

TEST(Half, PromotionsFollowMsl) {
  const half h = 1.5f;
  static_assert(std::is_same_v<decltype(h * h), half>);
  static_assert(std::is_same_v<decltype(h * 2), half>);
  static_assert(std::is_same_v<decltype(h * 2.0f), float>);
  static_assert(std::is_same_v<decltype(2.0f + h), float>);
  EXPECT_EQ(h * 2.0f, 3.0f);
  EXPECT_TRUE(h < 2.0f);
  EXPECT_EQ(static_cast<float>(-h), -1.5f);
  EXPECT_EQ(metal::as_type<ushort>(h), 0x3e00);
}

TEST(Vectors, HaveMetalSizesAndAlignment) {
  static_assert(sizeof(float3) == 16 && alignof(float3) == 16);
  static_assert(sizeof(half3) == 8 && alignof(half4) == 8);
  static_assert(sizeof(uchar3) == 4 && sizeof(float2) == 8 && alignof(float2) == 8);
  static_assert(sizeof(int4) == 16 && sizeof(ulong2) == 16);
  SUCCEED();
}

TEST(Vectors, ConstructorsCountComponents) {
  const float4 v(1.0f, 2.0f, 3.0f, 4.0f);
  const float4 a(v.xy, 0, 1);
  EXPECT_EQ(a.x, 1.0f);
  EXPECT_EQ(a.y, 2.0f);
  EXPECT_EQ(a.z, 0.0f);
  EXPECT_EQ(a.w, 1.0f);
  const float4 b(v.w, v.zyx);
  EXPECT_EQ(b[0], 4.0f);
  EXPECT_EQ(b[3], 1.0f);
  const float4 c = 2.5f;
  EXPECT_EQ(c.w, 2.5f);
  const half4 h = half4(v);
  EXPECT_EQ(static_cast<float>(h.z), 3.0f);
  const float4 back = float4(h);
  EXPECT_EQ(back.y, 2.0f);
}

TEST(Vectors, SwizzlesAndComponentwiseFunctions) {
  const float4 v(1.0f, -2.0f, 3.0f, -4.0f);
  const float2 wz = v.wz;
  EXPECT_EQ(wz.x, -4.0f);
  EXPECT_EQ(metal::dot(v.xy, v.zw), 1.0f * 3.0f + -2.0f * -4.0f);
  const float4 m = metal::max(v, 0.0f);
  EXPECT_EQ(m.y, 0.0f);
  EXPECT_EQ(m.z, 3.0f);
  const float4 s = v * 2 + v.xxxx;
  EXPECT_EQ(s.w, -7.0f);
  const bool4 gt = v > 0.0f;
  EXPECT_TRUE(gt.x && !gt.y);
  EXPECT_TRUE(metal::any(gt));
  EXPECT_FALSE(metal::all(gt));
  const float4 sel = metal::select(v, float4(9.0f), gt);
  EXPECT_EQ(sel.x, 9.0f);
  EXPECT_EQ(sel.y, -2.0f);
  EXPECT_FLOAT_EQ(metal::length(float2(3.0f, 4.0f)), 5.0f);
  EXPECT_EQ(metal::precise::exp(1.0f), std::exp(1.0f));
  EXPECT_FLOAT_EQ(metal::precise::rsqrt(4.0f), 0.5f);
  const float4 e = metal::exp(float4(0.0f));
  EXPECT_EQ(e.z, 1.0f);
  EXPECT_EQ(metal::clamp(5, 0, 3), 3);
  const uint2 u = uint2(7u, 12u) >> 1u;
  EXPECT_EQ(u.y, 6u);
  float4 acc = 1.0f;
  acc += v;
  acc *= 2.0f;
  EXPECT_EQ(acc.x, 4.0f);
}

// fast:: is the fast-math model, precise:: the C library, the unqualified name whichever the
// running dispatch selected (the runner sets the flag; here the test does); half has one
// precision, and vectors and geometric functions use their namespace's scalar functions.
TEST(MathVariants, NamespacesAndTheModeSelectTheFunction) {
  namespace fm = torchless::mslemu::fast_math;
  bool& fast_mode = torchless::mslemu::detail::fast_math_functions;
  const float x = 0.7f;
  EXPECT_EQ(metal::fast::sin(x), fm::sin(x));
  EXPECT_NE(metal::fast::sin(x), std::sin(x));
  EXPECT_EQ(metal::precise::sin(x), std::sin(x));
  EXPECT_EQ(metal::fast::pow(x, 3.0f), fm::pow(x, 3.0f));
  EXPECT_EQ(metal::precise::pow(x, 3.0f), std::pow(x, 3.0f));
  EXPECT_EQ(metal::sin(x), std::sin(x));
  fast_mode = true;
  EXPECT_EQ(metal::sin(x), fm::sin(x));
  EXPECT_EQ(metal::divide(x, 3.0f), fm::divide(x, 3.0f));
  EXPECT_EQ(metal::precise::sin(x), std::sin(x));
  EXPECT_EQ(static_cast<float>(metal::sin(half(x))),
            static_cast<float>(half(std::sin(float(half(x))))));
  const float2 v(x, -2.0f);
  EXPECT_EQ(metal::exp(v).y, fm::exp(-2.0f));
  EXPECT_EQ(metal::precise::exp(v).y, std::exp(-2.0f));
  EXPECT_EQ(metal::length(v), fm::sqrt(metal::dot(v, v)));
  EXPECT_EQ(metal::precise::length(v), std::sqrt(metal::dot(v, v)));
  fast_mode = false;
  EXPECT_EQ(metal::fast::normalize(v).x, x * fm::rsqrt(metal::dot(v, v)));
  EXPECT_EQ(metal::exp(v).y, std::exp(-2.0f));
  EXPECT_EQ(metal::divide(x, 3.0f), x / 3.0f);
}

}  // namespace
