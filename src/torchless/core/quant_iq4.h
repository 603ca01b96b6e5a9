#pragma once
// The non-linear 4-bit types IQ4_NL and IQ4_XS: GGUF block layouts (ggml's block_iq4_nl and
// block_iq4_xs byte for byte) and scalar reference (de)quantisers, used by quant.cpp's
// dispatch. Both map a 4-bit code through the same 16-entry table of signed levels, denser
// near zero, instead of a uniform grid.
//   IQ4_NL: blocks of 32; qs[j] low nibble = element j, high nibble = element j + 16;
//           value = d * kIQ4Levels[code].
//   IQ4_XS: super-blocks of 256 = 8 sub-blocks of 32 with a 6-bit scale each (low 4 bits in
//           nibble s%2 of scales_l[s/2], top 2 bits at bit 2s of scales_h, stored + 32);
//           sub-block s uses qs[16s .. 16s+15] as IQ4_NL does; value = d * (ls - 32) * level.
#include <cstdint>

namespace torchless {

inline constexpr int8_t kIQ4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

struct BlockIQ4_NL {
  uint16_t d;  // fp16 bits
  uint8_t qs[16];
};
struct BlockIQ4_XS {
  uint16_t d;  // fp16 bits
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136);

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
