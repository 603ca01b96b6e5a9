#pragma once
// GGUF block-quantized layouts, with scalar reference (de)quantisers. The structs reproduce
// ggml's block_* byte layouts exactly (ggml-common.h), so a pointer into a mapped GGUF tensor
// can be read as an array of them. Backends use these as the reference their fast kernels must
// agree with; this code favours clarity over speed.
//
// Element order inside a block (the part that is easy to get wrong):
//   Q4_0/Q4_1: qs[j] low nibble = element j, high nibble = element j + 16 (j < 16).
//   Q5_0/Q5_1: as Q4, plus bit j of the 32-bit little-endian qh = 5th bit of element j.
//   Q8_0:      qs[j] = element j.
//   Q4_K: 8 sub-blocks of 32, 6-bit scale and min each packed in scales[12] (see
//         q4k_scale_min); bytes qs[32*c .. 32*c+31] hold sub-block 2c in their low nibbles and
//         sub-block 2c+1 in their high nibbles.
//   Q5_K: Q4_K plus qh[32]: bit 2c of qh[l] is the 5th bit of element l of sub-block 2c, bit
//         2c+1 that of sub-block 2c+1.
//   Q6_K: 16 sub-blocks of 16, int8 scales. Two halves of 128 elements; in half h, element
//         l + 32*k (l < 32, k < 4) takes its low 4 bits from ql[64h + l + 32*(k&1)] (low nibble
//         for k < 2, high for k >= 2) and its top 2 bits from bits 2k..2k+1 of qh[32h + l];
//         value = d * scales[8h + l/16 + 2k] * (q - 32).
//   Q2_K, Q3_K: see quant_k.cpp. IQ4_NL, IQ4_XS: see quant_iq4.h.
#include <cstddef>
#include <cstdint>

#include "torchless/core/dtype.h"

namespace torchless {

inline constexpr int kQK = 32;     // elements per block of the legacy types
inline constexpr int kQK_K = 256;  // elements per super-block of the K types
inline constexpr int kKScaleBytes = 12;

// Half-precision fields are raw IEEE binary16 bits (see half.h).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // low nibble scale, high nibble min, per 16 elements
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];  // 16 6-bit scales
  uint16_t d;
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of groups of 16 qs, used by dot products
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// Unpacks the 6-bit scale and min of sub-block j (0..7) from Q4_K/Q5_K scales[12]: bytes 0..3
// hold scales 0..3 (low 6 bits), 4..7 mins 0..3; bytes 8..11 hold scales/mins 4..7 in their
// low/high nibbles with the top 2 bits in the spare bits 6..7 of bytes 0..7.
inline void q4k_scale_min(int j, const uint8_t* scales, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = scales[j] & 63;
    min = scales[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// The signed 6-bit scale of sub-block i (0..15) of a Q3_K block: low nibble (i/8) of
// scales[i%8], top 2 bits at bit 2*(i/4) of scales[8 + i%4], stored + 32.
inline int q3k_scale(const uint8_t* scales, int i) {
  const int low = (scales[i % 8] >> (4 * (i / 8))) & 0xF;
  const int high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

bool can_dequantize(DType type);
// Converts n elements (a multiple of the block size) at src, laid out as `type`, to float.
// Throws Error for types without a dequantiser or a bad n.
void dequantize_row(DType type, const std::byte* src, float* dst, int64_t n);

bool can_quantize(DType type);
// Quantises n floats into dtype_row_bytes(type, n) bytes at dst (round to nearest; scales
// chosen per block by a simple search). Throws Error for unsupported types or a bad n.
void quantize_row(DType type, const float* src, std::byte* dst, int64_t n);

}  // namespace torchless
