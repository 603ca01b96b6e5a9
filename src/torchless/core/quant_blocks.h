// GGUF's block-quantised layouts, written once for the C++ code (core/quant.h) and the Metal
// shaders (backends/metal/kernels/metal_common.h), as ggml's ggml-common.h is: plain structs
// of fixed-width members that reproduce ggml's block_* byte layouts exactly, so a pointer into
// a mapped GGUF tensor can be read as an array of them on either side.
//
// The language decides one thing, the type of the binary16 fields (QuantHalf): `half` in MSL
// (__METAL_VERSION__, which the MSL emulator defines too), so the shaders convert with float();
// on the host the raw bits (uint16_t, converted by half.h), and the structs are in torchless::.
// The header must stay valid MSL: no standard header outside the host branch, and no
// program-scope variable (MSL wants those in the constant address space, which C++ cannot
// spell), so the constants are macros that each side turns into its own typed constants.
//
// Element order inside a block (the part that is easy to get wrong):
//   Q4_0/Q4_1: qs[j] low nibble = element j, high nibble = element j + 16 (j < 16);
//              value = d * (q - 8) (Q4_0) or d * q + m (Q4_1).
//   Q5_0/Q5_1: as Q4, plus bit j of the 32-bit little-endian qh = 5th bit of element j;
//              value = d * (q - 16) (Q5_0) or d * q + m (Q5_1).
//   Q8_0:      qs[j] = element j; value = d * q.
//   Q2_K: 16 sub-blocks of 16; element 128h + 32j + m (h < 2, j < 4, m < 32) is bits
//         2j..2j+1 of qs[32h + m]; scales[s]: low nibble scale, high nibble min;
//         value = d * scale * q - dmin * min.
//   Q3_K: codes as Q2_K plus a third bit, bit 4h + j of hmask[m]; 16 6-bit scales stored + 32
//         (low nibble s / 8 of scales[s % 8], top 2 bits at bit 2 (s / 4) of
//         scales[8 + s % 4]); value = d * scale * (q - 4).
//   Q4_K: 8 sub-blocks of 32, 6-bit scale and min each packed in scales[12] (bytes 0..3 hold
//         scales 0..3 in their low 6 bits, 4..7 mins 0..3; bytes 8..11 hold scales/mins 4..7
//         in their low/high nibbles with the top 2 bits in bits 6..7 of bytes 0..7); bytes
//         qs[32c .. 32c + 31] hold sub-block 2c in their low nibbles and sub-block 2c + 1 in
//         their high nibbles; value = d * scale * q - dmin * min.
//   Q5_K: Q4_K plus qh[32]: bit j of qh[l] is the 5th bit of element l of sub-block j.
//   Q6_K: 16 sub-blocks of 16, int8 scales. Two halves of 128 elements; in half h, element
//         l + 32k (l < 32, k < 4) takes its low 4 bits from ql[64h + l + 32 (k & 1)] (low
//         nibble for k < 2, high for k >= 2) and its top 2 bits from bits 2k..2k+1 of
//         qh[32h + l]; value = d * scales[8h + l / 16 + 2k] * (q - 32).
//   Q8_K: qs[j] = element j, value = d * q (float d); bsums serve dot products only.
//   IQ4_NL: as Q4_0, but value = d * level[code] (TORCHLESS_IQ4_LEVELS, denser near zero).
//   IQ4_XS: 8 sub-blocks of 32 as IQ4_NL (sub-block s in qs[16s .. 16s + 15]) with 6-bit
//           scales stored + 32: low 4 bits in nibble s % 2 of scales_l[s / 2], top 2 bits at
//           bit 2s of scales_h; value = d * (scale - 32) * level[code].
#ifndef TORCHLESS_CORE_QUANT_BLOCKS_H
#define TORCHLESS_CORE_QUANT_BLOCKS_H

#define TORCHLESS_QK 32     // elements per block of the legacy types and IQ4_NL
#define TORCHLESS_QK_K 256  // elements per super-block of the K types and IQ4_XS
#define TORCHLESS_K_SCALE_BYTES 12
// The 16 signed levels of IQ4_NL and IQ4_XS codes.
#define TORCHLESS_IQ4_LEVELS \
  { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 }

#ifdef __METAL_VERSION__
typedef half QuantHalf;
#else
#include <cstdint>
namespace torchless {
typedef uint16_t QuantHalf;  // IEEE binary16 bits (see half.h)
#endif

struct BlockQ4_0 {
  QuantHalf d;
  uint8_t qs[TORCHLESS_QK / 2];
};
struct BlockQ4_1 {
  QuantHalf d;
  QuantHalf m;
  uint8_t qs[TORCHLESS_QK / 2];
};
struct BlockQ5_0 {
  QuantHalf d;
  uint8_t qh[4];
  uint8_t qs[TORCHLESS_QK / 2];
};
struct BlockQ5_1 {
  QuantHalf d;
  QuantHalf m;
  uint8_t qh[4];
  uint8_t qs[TORCHLESS_QK / 2];
};
struct BlockQ8_0 {
  QuantHalf d;
  int8_t qs[TORCHLESS_QK];
};
struct BlockQ2_K {
  uint8_t scales[TORCHLESS_QK_K / 16];
  uint8_t qs[TORCHLESS_QK_K / 4];
  QuantHalf d;
  QuantHalf dmin;
};
struct BlockQ3_K {
  uint8_t hmask[TORCHLESS_QK_K / 8];
  uint8_t qs[TORCHLESS_QK_K / 4];
  uint8_t scales[12];
  QuantHalf d;
};
struct BlockQ4_K {
  QuantHalf d;
  QuantHalf dmin;
  uint8_t scales[TORCHLESS_K_SCALE_BYTES];
  uint8_t qs[TORCHLESS_QK_K / 2];
};
struct BlockQ5_K {
  QuantHalf d;
  QuantHalf dmin;
  uint8_t scales[TORCHLESS_K_SCALE_BYTES];
  uint8_t qh[TORCHLESS_QK_K / 8];
  uint8_t qs[TORCHLESS_QK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[TORCHLESS_QK_K / 2];
  uint8_t qh[TORCHLESS_QK_K / 4];
  int8_t scales[TORCHLESS_QK_K / 16];
  QuantHalf d;
};
struct BlockQ8_K {
  float d;
  int8_t qs[TORCHLESS_QK_K];
  int16_t bsums[TORCHLESS_QK_K / 16];  // sums of groups of 16 qs
};
struct BlockIQ4_NL {
  QuantHalf d;
  uint8_t qs[TORCHLESS_QK / 2];
};
struct BlockIQ4_XS {
  QuantHalf d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[TORCHLESS_QK_K / 2];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20, "GGUF block sizes");
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24, "GGUF block sizes");
static_assert(sizeof(BlockQ8_0) == 34, "GGUF block sizes");
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110, "GGUF block sizes");
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176, "GGUF block sizes");
static_assert(sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292, "GGUF block sizes");
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136, "GGUF block sizes");

#ifndef __METAL_VERSION__
}  // namespace torchless
#endif

#endif  // TORCHLESS_CORE_QUANT_BLOCKS_H
