#pragma once
// The non-linear 4-bit types IQ4_NL and IQ4_XS (layouts in quant_blocks.h): scalar reference
// (de)quantisers, used by quant.cpp's table. Both map a 4-bit code through the same 16-entry
// table of signed levels, denser near zero, instead of a uniform grid.
#include <cstdint>

#include "torchless/core/quant_blocks.h"

namespace torchless {

inline constexpr int8_t kIQ4Levels[16] = TORCHLESS_IQ4_LEVELS;

namespace quant_iq4 {

void dequantize_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t nb);
void dequantize_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t nb);

// Test-data quantisers: one scale per block (IQ4_NL) or per sub-block (IQ4_XS) that maps the
// element of largest magnitude to the level -127, then each element to its nearest level.
// Simpler and less accurate than llama-quantize's search, but bit-compatible.
void quantize_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t nb);
void quantize_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t nb);

}  // namespace quant_iq4
}  // namespace torchless
