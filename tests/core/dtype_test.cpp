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

// Every GGUF type id 0..39, with its block computed from the fields of ggml's block structs
// (scales as 2-byte halves unless noted), so the table cannot drift from the format.
TEST(DType, EveryGgufTypeHasGgmlsBlockLayout) {
  struct Expected {
    uint32_t id;
    int64_t block;
    size_t bytes;
  };
  const Expected expected[] = {
      {0, 1, 4},
      {1, 1, 2},
      {2, 32, 2 + 16},                   // q4_0: d, 32 nibbles
      {3, 32, 2 + 2 + 16},               // q4_1: d, m, nibbles
      {6, 32, 2 + 4 + 16},               // q5_0: d, 32 high bits, nibbles
      {7, 32, 2 + 2 + 4 + 16},           // q5_1
      {8, 32, 2 + 32},                   // q8_0
      {9, 32, 2 + 2 + 32},               // q8_1: d, s, int8s
      {10, 256, 16 + 64 + 2 + 2},        // q2_K: scales, 2-bit quants, d, dmin
      {11, 256, 32 + 64 + 12 + 2},       // q3_K: hmask, quants, scales, d
      {12, 256, 2 + 2 + 12 + 128},       // q4_K
      {13, 256, 2 + 2 + 12 + 32 + 128},  // q5_K
      {14, 256, 128 + 64 + 16 + 2},      // q6_K: ql, qh, int8 scales, d
      {15, 256, 4 + 256 + 32},           // q8_K: float d, int8s, int16 sums
      {16, 256, 2 + 64},                 // iq2_xxs
      {17, 256, 2 + 64 + 8},             // iq2_xs
      {18, 256, 2 + 96},                 // iq3_xxs: 3/8 byte per weight
      {19, 256, 2 + 32 + 16},            // iq1_s
      {20, 32, 2 + 16},                  // iq4_nl
      {21, 256, 2 + 64 + 8 + 32 + 4},    // iq3_s
      {22, 256, 2 + 64 + 8 + 8},         // iq2_s
      {23, 256, 2 + 2 + 4 + 128},        // iq4_xs
      {24, 1, 1},
      {25, 1, 2},
      {26, 1, 4},
      {27, 1, 8},
      {28, 1, 8},
      {29, 256, 32 + 16 + 8},  // iq1_m
      {30, 1, 2},
      {31, 32, 18},
      {32, 32, 18},
      {33, 32, 18},           // q4_0 interleaved
      {34, 256, 48 + 4 + 2},  // tq1_0
      {35, 256, 64 + 2},      // tq2_0
      {36, 32, 18},
      {37, 32, 18},
      {38, 32, 18},      // iq4_nl interleaved
      {39, 32, 1 + 16},  // mxfp4: e8m0 scale, nibbles
  };
  for (const Expected& e : expected) {
    const auto dtype = dtype_from_ggml(e.id);
    ASSERT_TRUE(dtype.has_value()) << "ggml type " << e.id;
    EXPECT_EQ(dtype_block_size(*dtype), e.block) << dtype_name(*dtype);
    EXPECT_EQ(dtype_traits(*dtype).block_bytes, e.bytes) << dtype_name(*dtype);
    EXPECT_EQ(dtype_from_name(dtype_name(*dtype)), dtype) << dtype_name(*dtype);
  }
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
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.0f / 2048.0f), 0x3c00u);  // tie -> even (down)
  EXPECT_EQ(fp32_to_fp16(1.0f + 3.0f / 2048.0f), 0x3c02u);  // tie -> even (up)
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00u);               // overflow -> Inf
  EXPECT_FLOAT_EQ(bf16_to_fp32(fp32_to_bf16(3.140625f)), 3.140625f);
}

}  // namespace
}  // namespace torchless
