#pragma once
// GGUF block-quantized layouts (quant_blocks.h, shared with the Metal shaders) with scalar
// reference (de)quantisers. Backends use these as the reference their fast kernels must agree
// with; this code favours clarity over speed. Q2_K, Q3_K: see also quant_k.cpp; IQ4_NL,
// IQ4_XS: quant_iq4.h.
#include <cstddef>
#include <cstdint>

#include "torchless/core/dtype.h"
#include "torchless/core/quant_blocks.h"

namespace torchless {

inline constexpr int kQK = TORCHLESS_QK;      // elements per block of the legacy types
inline constexpr int kQK_K = TORCHLESS_QK_K;  // elements per super-block of the K types
inline constexpr int kKScaleBytes = TORCHLESS_K_SCALE_BYTES;

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
