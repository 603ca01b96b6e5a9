// Quantisation: round trips with per-type error bounds, hand-built blocks whose values are
// known, and llama.cpp-quantised golden GGUFs dequantised against their F32 originals.
#include "torchless/core/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "core/quant_test_util.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {
namespace {

using quant_test::dequantize_block;
using quant_test::round_trip;

constexpr uint32_t kSeed = 20240611;

// Values with a different scale and offset per 16 elements, so that blocks differ.
std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.01f, 4.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i += 16) {
    const float s = scale(rng), offset = 0.3f * normal(rng) * s;
    for (int64_t j = i; j < std::min(n, i + 16); ++j)
      x[static_cast<size_t>(j)] = offset + s * normal(rng);
  }
  return x;
}

// Root-mean-square error relative to the RMS of x, over blocks of `block` elements, the worst
// block reported (computed in double, independent of the code under test).
double worst_block_relative_rms(const std::vector<float>& x, const std::vector<float>& y,
                                size_t block) {
  double worst = 0.0;
  for (size_t b = 0; b < x.size(); b += block) {
    double err = 0.0, ref = 0.0;
    for (size_t i = b; i < b + block; ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      ref += double(x[i]) * x[i];
    }
    worst = std::max(worst, std::sqrt(err / std::max(ref, 1e-30)));
  }
  return worst;
}

struct RoundTripCase {
  DType type;
  double max_block_rms;  // worst block's relative RMS error allowed
};

class QuantRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(QuantRoundTrip, ErrorStaysWithinTheTypesBound) {
  const RoundTripCase c = GetParam();
  const int64_t block = dtype_block_size(c.type);
  for (int64_t blocks : {1, 3, 7, 33}) {
    const int64_t n = blocks * (block == 1 ? 37 : block);
    const uint32_t seed = kSeed + static_cast<uint32_t>(n);
    const std::vector<float> x = random_values(n, seed);
    const std::vector<float> y = round_trip(c.type, x);
    const size_t bound_block = static_cast<size_t>(block == 1 ? 37 : std::max<int64_t>(block, 32));
    EXPECT_LE(worst_block_relative_rms(x, y, bound_block), c.max_block_rms)
        << dtype_name(c.type) << " n=" << n << " seed=" << seed;
  }
}

// Bounds are about 1.5x the worst block measured with these seeds (a b-bit code over a block's
// range gives a relative RMS error near 0.3 / (2^b - 1) for Gaussian data, more where one
// super-block scale serves sub-blocks of very different ranges, as random_values makes them).
INSTANTIATE_TEST_SUITE_P(
    AllTypes, QuantRoundTrip,
    ::testing::Values(RoundTripCase{DType::F32, 0.0}, RoundTripCase{DType::F16, 1e-3},
                      RoundTripCase{DType::BF16, 4e-3}, RoundTripCase{DType::Q8_0, 0.012},
                      RoundTripCase{DType::Q4_0, 0.2}, RoundTripCase{DType::Q4_1, 0.17},
                      RoundTripCase{DType::Q5_0, 0.11}, RoundTripCase{DType::Q5_1, 0.085},
                      RoundTripCase{DType::Q2_K, 0.55}, RoundTripCase{DType::Q3_K, 0.27},
                      RoundTripCase{DType::Q4_K, 0.14}, RoundTripCase{DType::Q5_K, 0.07},
                      RoundTripCase{DType::Q6_K, 0.033}, RoundTripCase{DType::Q8_K, 0.02}),
    [](const auto& info) { return std::string(dtype_name(info.param.type)); });

TEST(Quant, ElementwiseErrorOfLegacyTypesIsAtMostOneStep) {
  // Q4_0 / Q5_0 map the signed extreme to the most negative code, so the opposite extreme can be
  // clamped by one step; everything else is within half a step. Storing the step d as fp16
  // (relative error up to 2^-11) moves a code q by up to |q| * 2^-11 steps more, at most
  // levels / 2048; 0.001 step covers float rounding. The bound is derived, not fitted to one
  // sample: the values differ between standard libraries (normal_distribution is theirs).
  const std::vector<float> x = random_values(32 * 41, kSeed);
  for (DType type : {DType::Q4_0, DType::Q5_0, DType::Q8_0}) {
    const std::vector<float> y = round_trip(type, x);
    const float levels = type == DType::Q4_0 ? 8.0f : type == DType::Q5_0 ? 16.0f : 127.0f;
    const float steps = (type == DType::Q8_0 ? 0.5f : 1.0f) + levels / 2048.0f + 0.001f;
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0.0f;
      for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
      for (size_t i = b; i < b + 32; ++i) {
        ASSERT_LE(std::fabs(x[i] - y[i]), steps * amax / levels + 1e-6f)
            << dtype_name(type) << " element " << i;
      }
    }
  }
}

TEST(Quant, MisalignedBuffersGiveTheSameValues) {
  const std::vector<float> x = random_values(512, kSeed + 1);
  for (DType type : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::Q8_K, DType::F16}) {
    const size_t bytes = dtype_row_bytes(type, 512);
    std::vector<std::byte> aligned(bytes), shifted(bytes + 1);
    quantize_row(type, x.data(), aligned.data(), 512);
    quantize_row(type, x.data(), shifted.data() + 1, 512);
    ASSERT_EQ(std::memcmp(aligned.data(), shifted.data() + 1, bytes), 0) << dtype_name(type);
    std::vector<float> a(512), b(512);
    dequantize_row(type, aligned.data(), a.data(), 512);
    dequantize_row(type, shifted.data() + 1, b.data(), 512);
    EXPECT_EQ(a, b) << dtype_name(type);
  }
}

TEST(Quant, ConstantBlocksSurvive) {
  // A block of one non-zero value: every type must reproduce it closely (zero range, min only).
  std::vector<float> x(512, -1.75f);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K,
                     DType::Q5_K, DType::Q6_K, DType::Q3_K, DType::Q8_K}) {
    const std::vector<float> y = round_trip(type, x);
    for (float v : y) ASSERT_NEAR(v, -1.75f, 0.02f) << dtype_name(type);
  }
}

// --- hand-built blocks -------------------------------------------------------------------

TEST(QuantLayout, Q4_0LowNibblesAreTheFirstHalf) {
  BlockQ4_0 b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((j & 0xF) | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(DType::Q4_0, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_FLOAT_EQ(y[j], 0.5f * (j - 8));
    EXPECT_FLOAT_EQ(y[j + 16], 0.5f * (15 - j - 8));
  }
}

TEST(QuantLayout, Q4_1AddsTheMinimum) {
  BlockQ4_1 b{};
  b.d = fp32_to_fp16(0.25f);
  b.m = fp32_to_fp16(-3.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (3 << 4));
  const std::vector<float> y = dequantize_block(DType::Q4_1, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_FLOAT_EQ(y[j], 0.25f * j - 3.0f);
    EXPECT_FLOAT_EQ(y[j + 16], 0.25f * 3 - 3.0f);
  }
}

TEST(QuantLayout, Q5_0HighBitsComeFromTheLittleEndianWord) {
  BlockQ5_0 b{};
  b.d = fp32_to_fp16(1.0f);
  const uint32_t qh = 0x80000001u;  // 5th bit set for elements 0 and 31 only
  std::memcpy(b.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(0x21);  // low 1, high 2
  const std::vector<float> y = dequantize_block(DType::Q5_0, b);
  EXPECT_FLOAT_EQ(y[0], 17.0f - 16.0f);
  EXPECT_FLOAT_EQ(y[1], 1.0f - 16.0f);
  EXPECT_FLOAT_EQ(y[16], 2.0f - 16.0f);
  EXPECT_FLOAT_EQ(y[31], 18.0f - 16.0f);
}

TEST(QuantLayout, Q5_1UsesScaleMinAndHighBits) {
  BlockQ5_1 b{};
  b.d = fp32_to_fp16(2.0f);
  b.m = fp32_to_fp16(0.5f);
  const uint32_t qh = 1u << 20;
  std::memcpy(b.qh, &qh, 4);
  const std::vector<float> y = dequantize_block(DType::Q5_1, b);
  EXPECT_FLOAT_EQ(y[20], 2.0f * 16 + 0.5f);
  EXPECT_FLOAT_EQ(y[19], 0.5f);
}

TEST(QuantLayout, Q8_0IsScaleTimesInt8) {
  BlockQ8_0 b{};
  b.d = fp32_to_fp16(0.125f);
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 128);
  const std::vector<float> y = dequantize_block(DType::Q8_0, b);
  for (int j = 0; j < 32; ++j) EXPECT_FLOAT_EQ(y[j], 0.125f * (j * 8 - 128));
}

TEST(QuantLayout, Q4_KUnpacksSixBitScalesAndMins) {
  BlockQ4_K b{};
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(0.5f);
  // Sub-block j gets scale 10+j... and min 40+j, 6-bit values whose top bits matter for j >= 4.
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = 10 + 7 * j;  // 10..59
    mn[j] = 63 - 5 * j;  // 63..28
  }
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    q4k_scale_min(j, b.scales, s, m);
    EXPECT_EQ(s, sc[j]);
    EXPECT_EQ(m, mn[j]);
  }
  // qs[32c + l]: low nibble = element l of sub-block 2c, high nibble = sub-block 2c + 1.
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l)
      b.qs[32 * c + l] = static_cast<uint8_t>((l % 16) | ((15 - l % 16) << 4));
  }
  const std::vector<float> y = dequantize_block(DType::Q4_K, b);
  for (int sub = 0; sub < 8; ++sub) {
    for (int l = 0; l < 32; ++l) {
      const int q = sub % 2 == 0 ? l % 16 : 15 - l % 16;
      EXPECT_FLOAT_EQ(y[32 * sub + l], 1.0f * sc[sub] * q - 0.5f * mn[sub]) << sub << " " << l;
    }
  }
}

TEST(QuantLayout, Q5_KTakesTheFifthBitFromQhBitPerSubBlock) {
  BlockQ5_K b{};
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(1.0f);
  for (int j = 0; j < 4; ++j) b.scales[j] = 1;  // scale 1, min 0 for sub-blocks 0..3
  b.qh[5] = 1u << 3;                            // element 5 of sub-block 3
  const std::vector<float> y = dequantize_block(DType::Q5_K, b);
  EXPECT_FLOAT_EQ(y[32 * 3 + 5], 16.0f);
  EXPECT_FLOAT_EQ(y[32 * 2 + 5], 0.0f);
  EXPECT_FLOAT_EQ(y[32 * 3 + 6], 0.0f);
}

TEST(QuantLayout, Q6_KSplitsLowAndHighBits) {
  BlockQ6_K b{};
  b.d = fp32_to_fp16(1.0f);
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s - 8 == 0 ? 1 : s - 8);
  // Element 128 + 64 + 3 (h=1, k=2, l=3): high nibble of ql[64 + 3], bits 4..5 of qh[32 + 3].
  b.ql[64 + 3] = 0x50;      // low 4 bits of the code: 5
  b.qh[32 + 3] = 0x2 << 4;  // top 2 bits: 2  -> code 5 + 32 = 37 -> 37 - 32 = 5
  const std::vector<float> y = dequantize_block(DType::Q6_K, b);
  const int e = 128 + 64 + 3;
  EXPECT_FLOAT_EQ(y[e], static_cast<float>(b.scales[e / 16]) * 5.0f);
  // Untouched elements hold code 0 -> value scale * -32.
  EXPECT_FLOAT_EQ(y[0], static_cast<float>(b.scales[0]) * -32.0f);
}

TEST(QuantLayout, Q3_KScalesAndHmask) {
  BlockQ3_K b{};
  b.d = fp32_to_fp16(1.0f);
  // Scale 13 = 6-bit 45 (45 - 32): low nibble 13 in scales[13 % 8] high half, top bits 2 at
  // bit 2*(13/4)=6 of scales[8 + 13 % 4].
  b.scales[5] = 0xD0;
  b.scales[9] = 2 << 6;
  // Element 16*13 = 208 = 128 + 2*32 + 16: low bits at bits 4..5 of qs[32 + 16], hmask bit 6.
  b.qs[48] = 3 << 4;
  b.hmask[16] = 1 << 6;
  const std::vector<float> y = dequantize_block(DType::Q3_K, b);
  EXPECT_FLOAT_EQ(y[208], 13.0f * (3 + 4 - 4));
  EXPECT_FLOAT_EQ(y[209], 13.0f * -4);  // code 0, no high bit
}

TEST(QuantLayout, Q2_KScaleAndMinNibbles) {
  BlockQ2_K b{};
  b.d = fp32_to_fp16(2.0f);
  b.dmin = fp32_to_fp16(0.5f);
  b.scales[3] = 0x63;  // sub-block 3 (elements 48..63): scale 3, min 6
  b.qs[16] = 3 << 2;   // element 48 = 32*1 + 16: bits 2..3 of qs[16]
  const std::vector<float> y = dequantize_block(DType::Q2_K, b);
  EXPECT_FLOAT_EQ(y[48], 2.0f * 3 * 3 - 0.5f * 6);
  EXPECT_FLOAT_EQ(y[49], -0.5f * 6);
}

TEST(Quant, UnsupportedTypesAndBadLengthsThrow) {
  std::vector<std::byte> buf(1024);
  std::vector<float> out(256);
  EXPECT_FALSE(can_dequantize(DType::IQ2_XXS));
  EXPECT_THROW(dequantize_row(DType::IQ2_XXS, buf.data(), out.data(), 256), Error);
  EXPECT_THROW(quantize_row(DType::IQ2_S, out.data(), buf.data(), 256), Error);
  EXPECT_THROW(dequantize_row(DType::Q4_0, buf.data(), out.data(), 33), Error);
  EXPECT_TRUE(can_quantize(DType::Q6_K));
  EXPECT_TRUE(can_dequantize(DType::BF16));
}

// --- golden files: llama.cpp's quantiser against the F32 originals ------------------------

std::string golden(const std::string& rel) {
  const std::string path = std::string(TORCHLESS_SOURCE_DIR) + "/../shared/golden/" + rel;
  if (!std::filesystem::exists(path)) ADD_FAILURE() << "missing golden file " << path;
  return path;
}

struct GoldenCase {
  const char* quantized;
  const char* reference;
  DType type;
  double max_relative_rms;  // per tensor
};

class QuantGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(QuantGolden, DequantisedTensorsMatchTheF32Weights) {
  const GoldenCase c = GetParam();
  const auto quantized = GgufFile::open(golden(c.quantized));
  const auto reference = GgufFile::open(golden(c.reference));
  int checked = 0;
  for (const GgufTensorInfo& t : quantized->tensors()) {
    if (t.dtype != c.type) continue;
    const GgufTensorInfo* ref = reference->find_tensor(t.name);
    ASSERT_NE(ref, nullptr) << t.name;
    ASSERT_EQ(ref->dtype, DType::F32);
    ASSERT_EQ(ref->shape, t.shape) << t.name;
    std::vector<float> y(static_cast<size_t>(t.shape.numel()));
    const int64_t cols = t.shape.cols();
    const size_t row_bytes = dtype_row_bytes(t.dtype, cols);
    for (int64_t r = 0; r < t.shape.rows(); ++r) {
      dequantize_row(t.dtype, t.data + static_cast<size_t>(r) * row_bytes, y.data() + r * cols,
                     cols);
    }
    const auto* x = reinterpret_cast<const float*>(ref->data);
    double err = 0.0, norm = 0.0;
    for (size_t i = 0; i < y.size(); ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      norm += double(x[i]) * x[i];
    }
    EXPECT_LE(std::sqrt(err / norm), c.max_relative_rms) << t.name;
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no " << dtype_name(c.type) << " tensors in " << c.quantized;
}

// A wrong element order or scale layout gives relative errors near 1.4; these bounds are about
// 1.5x what a correct decoder measures on these files.
INSTANTIATE_TEST_SUITE_P(
    LlamaCpp, QuantGolden,
    ::testing::Values(
        GoldenCase{"llama/model-q8_0.gguf", "llama/model-f32.gguf", DType::Q8_0, 0.008},
        GoldenCase{"llama/model-q4_0.gguf", "llama/model-f32.gguf", DType::Q4_0, 0.13},
        GoldenCase{"qwen2/model-q4_0.gguf", "qwen2/model-f32.gguf", DType::Q4_0, 0.13},
        GoldenCase{"qwen2/model-q4_k.gguf", "qwen2/model-f32.gguf", DType::Q4_K, 0.11},
        GoldenCase{"qwen2/model-q4_k.gguf", "qwen2/model-f32.gguf", DType::Q6_K, 0.027}),
    [](const auto& info) {
      return "case" + std::to_string(info.index) + "_" + std::string(dtype_name(info.param.type));
    });

}  // namespace
}  // namespace torchless
