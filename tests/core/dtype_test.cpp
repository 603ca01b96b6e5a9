#include "torchless/core/dtype.h"

#include <gtest/gtest.h>

#include "torchless/core/error.h"
#include "torchless/core/half.h"

namespace torchless {
namespace {

TEST(DType, BlockLayoutsMatchGguf) {
  EXPECT_EQ(dtype_traits(DType::Q4_0).block_bytes, 18u);
  EXPECT_EQ(dtype_traits(DType::Q8_0).block_bytes, 34u);
  EXPECT_EQ(dtype_traits(DType::Q4_K).block_bytes, 144u);
  EXPECT_EQ(dtype_traits(DType::Q6_K).block_bytes, 210u);
  EXPECT_EQ(dtype_row_bytes(DType::Q4_K, 512), 288u);
  EXPECT_EQ(dtype_row_bytes(DType::F16, 7), 14u);
}

TEST(DType, RowOfPartialBlockIsRejected) {
  EXPECT_THROW(dtype_row_bytes(DType::Q8_0, 33), Error);
}

TEST(DType, UnknownGgmlIdsAreNotTypes) {
  EXPECT_FALSE(dtype_from_ggml(4).has_value());
  EXPECT_FALSE(dtype_from_ggml(1000).has_value());
  EXPECT_EQ(dtype_from_ggml(30), DType::BF16);
  EXPECT_EQ(dtype_from_name("Q4_K"), DType::Q4_K);
}

TEST(Half, RoundTripsEveryFiniteHalf) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    if ((h & 0x7c00u) == 0x7c00u) continue;  // Inf/NaN
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(h)), h) << "bits " << bits;
  }
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.0f / 2048.0f), 0x3c00u);       // tie -> even (down)
  EXPECT_EQ(fp32_to_fp16(1.0f + 3.0f / 2048.0f), 0x3c02u);       // tie -> even (up)
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00u);                    // overflow -> Inf
  EXPECT_FLOAT_EQ(bf16_to_fp32(fp32_to_bf16(3.140625f)), 3.140625f);
}

}  // namespace
}  // namespace torchless
