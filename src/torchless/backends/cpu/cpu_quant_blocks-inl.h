// Per-type decoders of GGUF weight blocks into int16 vectors, for the integer dot products of
// cpu_quant_dot.cpp; included once per Highway target. Layouts: quant.h and quant_k.cpp.
//
// Each block type is a struct with:
//   Block                      the quant.h block struct
//   kElems                     elements per block (32 or 256)
//   kScaleGroup                elements per integer sub-block scale (0: none)
//   kSumGroups                 activation sums per block used by the offset term (0: none)
//   header(block, h)           the float scale (and offset), the integer sub-block scales and
//                              the weights of the activation sums in the offset term
//   codes<E>(d, block)         the signed integer codes of elements E .. E + Lanes(d)
// so that block . x = h.d * sum(codes * scales * xq) * dx + h.m * sum(mins * xsums) * dx.
// Lanes(d) is 8, 16 or 32 and divides 32, so a chunk never straddles a 32-element run.

// Per-target include guard (Highway's -inl.h convention).
#if defined(TORCHLESS_CPU_QUANT_BLOCKS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TORCHLESS_CPU_QUANT_BLOCKS_INL_H_
#undef TORCHLESS_CPU_QUANT_BLOCKS_INL_H_
#else
#define TORCHLESS_CPU_QUANT_BLOCKS_INL_H_
#endif

#include <hwy/highway.h>

#include "torchless/core/quant.h"
#include "torchless/core/quant_iq4.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Decoded per-block constants. scales and mins are per 16 elements, duplicated for types with
// 32-element sub-blocks, so one code path serves every K type.
struct BlockHeader {
  float d = 0.0f;
  float m = 0.0f;
  int16_t scales[16];
  int16_t mins[16];
};

// One F16 scale to F32: a single vcvtph2ps where the target has F16C, instead of the branchy
// portable conversion that would cost as much as a small block's dot product.
inline float half_bits_to_float(uint16_t bits) {
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  const hn::Rebind<uint16_t, decltype(d1)> du1;
  return hn::GetLane(hn::PromoteTo(d1, hn::BitCast(dh1, hn::Set(du1, bits))));
}

// Lanes(d) bytes at p, widened to uint16 lanes.
template <class D>
hn::Vec<hn::RebindToUnsigned<D>> load_u8(D d, const uint8_t* p) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint8_t, D> d8;
  (void)d;
  return hn::PromoteTo(du, hn::LoadU(d8, p));
}

template <class D>
hn::Vec<hn::RebindToUnsigned<D>> low_nibbles(D d, const uint8_t* p) {
  return hn::And(load_u8(d, p), hn::Set(hn::RebindToUnsigned<D>(), uint16_t{0xF}));
}

template <class D>
hn::Vec<hn::RebindToUnsigned<D>> high_nibbles(D d, const uint8_t* p) {
  return hn::ShiftRight<4>(load_u8(d, p));
}

// The 2-bit field at bit `shift` of each byte (Q2_K, Q3_K), or a 1-bit one.
template <class D>
hn::Vec<hn::RebindToUnsigned<D>> bit_field(D d, const uint8_t* p, int shift, uint16_t mask) {
  const hn::RebindToUnsigned<D> du;
  return hn::And(hn::ShiftRightSame(load_u8(d, p), shift), hn::Set(du, mask));
}

template <class D, class VU>
hn::Vec<D> to_signed(D d, VU v, int16_t offset) {
  return hn::Sub(hn::BitCast(d, v), hn::Set(d, offset));
}

// Codes E .. E + Lanes of the legacy nibble layout (byte j: element j low, j + 16 high).
template <int E, class D>
hn::Vec<hn::RebindToUnsigned<D>> legacy_nibbles(D d, const uint8_t* qs) {
#if HWY_TARGET != HWY_SCALAR  // which has no Combine, and only one lane
  if constexpr (hn::MaxLanes(D()) == 32) {
    const hn::RebindToUnsigned<D> du;
    const hn::Half<hn::RebindToUnsigned<D>> dh;
    const auto v = load_u8(dh, qs);
    return hn::Combine(du, hn::ShiftRight<4>(v), hn::And(v, hn::Set(dh, uint16_t{0xF})));
  }
#endif
  if constexpr (E < 16) {
    return low_nibbles(d, qs + E);
  } else {
    return high_nibbles(d, qs + E - 16);
  }
}

// The fifth bits of the Q5_0/Q5_1 elements E .. E + Lanes: bit j of the little-endian qh.
template <int E, class D>
hn::Vec<hn::RebindToUnsigned<D>> legacy_fifth_bits(D d, const uint8_t* qh) {
  const hn::RebindToUnsigned<D> du;
  (void)d;
  return hn::IfThenElseZero(hn::LoadMaskBits(du, qh + E / 8), hn::Set(du, uint16_t{16}));
}

// --- K types ------------------------------------------------------------------------------

// Q4_K/Q5_K header: 8 sub-blocks of 32 with 6-bit scales and mins, offset -dmin * min.
template <class Block>
void q45k_header(const Block& b, BlockHeader& h) {
  h.d = half_bits_to_float(b.d);
  h.m = -half_bits_to_float(b.dmin);
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, mn;
    q4k_scale_min(s, b.scales, sc, mn);
    h.scales[2 * s] = h.scales[2 * s + 1] = sc;
    h.mins[2 * s] = h.mins[2 * s + 1] = mn;
  }
}

// Element 64c + 32s + l: nibble s of qs[32c + l].
template <int E, class D>
hn::Vec<hn::RebindToUnsigned<D>> q4k_nibbles(D d, const uint8_t* qs) {
  constexpr int s = E / 32, l = E % 32, c = s / 2;
  if constexpr (s % 2 == 0) {
    return low_nibbles(d, qs + 32 * c + l);
  } else {
    return high_nibbles(d, qs + 32 * c + l);
  }
}

struct Q4K {
  using Block = BlockQ4_K;
  static constexpr int kElems = kQK_K, kScaleGroup = 32, kSumGroups = 16;
  static void header(const Block& b, BlockHeader& h) { q45k_header(b, h); }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    return hn::BitCast(d, q4k_nibbles<E>(d, b.qs));
  }
};

// Q5_K: the fifth bit of element 32s + l is bit s of qh[l].
struct Q5K {
  using Block = BlockQ5_K;
  static constexpr int kElems = kQK_K, kScaleGroup = 32, kSumGroups = 16;
  static void header(const Block& b, BlockHeader& h) { q45k_header(b, h); }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    const auto high = hn::ShiftLeft<4>(bit_field(d, b.qh + E % 32, E / 32, 1));
    return hn::BitCast(d, hn::Or(q4k_nibbles<E>(d, b.qs), high));
  }
};

// Q6_K: element 128h + 32k + l: low nibble (k >= 2: high) of ql[64h + 32(k&1) + l], top two
// bits at bit 2k of qh[32h + l]; codes stored + 32; int8 scales per 16.
struct Q6K {
  using Block = BlockQ6_K;
  static constexpr int kElems = kQK_K, kScaleGroup = 16, kSumGroups = 0;
  static void header(const Block& b, BlockHeader& h) {
    h.d = half_bits_to_float(b.d);
    for (int g = 0; g < 16; ++g) h.scales[g] = b.scales[g];
  }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    constexpr int half = E / 128, k = (E % 128) / 32, l = E % 32;
    const uint8_t* ql = b.ql + 64 * half + 32 * (k & 1) + l;
    const auto low = k >= 2 ? high_nibbles(d, ql) : low_nibbles(d, ql);
    const auto high = bit_field(d, b.qh + 32 * half + l, 2 * k, 3);
    return to_signed(d, hn::Or(low, hn::ShiftLeft<4>(high)), 32);
  }
};

// Q3_K: element 128h + 32j + m: bits 2j..2j+1 of qs[32h + m] plus 4 * bit (4h + j) of
// hmask[m], minus 4; signed 6-bit scales per 16.
struct Q3K {
  using Block = BlockQ3_K;
  static constexpr int kElems = kQK_K, kScaleGroup = 16, kSumGroups = 0;
  static void header(const Block& b, BlockHeader& h) {
    h.d = half_bits_to_float(b.d);
    for (int g = 0; g < 16; ++g) h.scales[g] = static_cast<int16_t>(q3k_scale(b.scales, g));
  }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    constexpr int half = E / 128, j = (E % 128) / 32, m = E % 32;
    const auto low = bit_field(d, b.qs + 32 * half + m, 2 * j, 3);
    const auto high = bit_field(d, b.hmask + m, 4 * half + j, 1);
    return to_signed(d, hn::Or(low, hn::ShiftLeft<2>(high)), 4);
  }
};

// Q2_K: element 128h + 32j + m: bits 2j..2j+1 of qs[32h + m]; 4-bit scale and min per 16.
struct Q2K {
  using Block = BlockQ2_K;
  static constexpr int kElems = kQK_K, kScaleGroup = 16, kSumGroups = 16;
  static void header(const Block& b, BlockHeader& h) {
    h.d = half_bits_to_float(b.d);
    h.m = -half_bits_to_float(b.dmin);
    for (int g = 0; g < 16; ++g) {
      h.scales[g] = b.scales[g] & 0xF;
      h.mins[g] = b.scales[g] >> 4;
    }
  }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    constexpr int half = E / 128, j = (E % 128) / 32, m = E % 32;
    return hn::BitCast(d, bit_field(d, b.qs + 32 * half + m, 2 * j, 3));
  }
};

// --- legacy 32-element types ----------------------------------------------------------------

// Q4_1: d * q + m with 4-bit q.
struct Q4_1 {
  using Block = BlockQ4_1;
  static constexpr int kElems = kQK, kScaleGroup = 0, kSumGroups = 1;
  static void header(const Block& b, BlockHeader& h) {
    h.d = half_bits_to_float(b.d);
    h.m = half_bits_to_float(b.m);
    h.mins[0] = 1;
  }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    return hn::BitCast(d, legacy_nibbles<E>(d, b.qs));
  }
};

// Q5_0: d * (q - 16) with 5-bit q.
struct Q5_0 {
  using Block = BlockQ5_0;
  static constexpr int kElems = kQK, kScaleGroup = 0, kSumGroups = 0;
  static void header(const Block& b, BlockHeader& h) { h.d = half_bits_to_float(b.d); }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    const auto q = hn::Or(legacy_nibbles<E>(d, b.qs), legacy_fifth_bits<E>(d, b.qh));
    return to_signed(d, q, 16);
  }
};

// Q5_1: d * q + m with 5-bit q.
struct Q5_1 {
  using Block = BlockQ5_1;
  static constexpr int kElems = kQK, kScaleGroup = 0, kSumGroups = 1;
  static void header(const Block& b, BlockHeader& h) {
    h.d = half_bits_to_float(b.d);
    h.m = half_bits_to_float(b.m);
    h.mins[0] = 1;
  }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    return hn::BitCast(d, hn::Or(legacy_nibbles<E>(d, b.qs), legacy_fifth_bits<E>(d, b.qh)));
  }
};

// --- non-linear 4-bit types -----------------------------------------------------------------

// kIQ4Levels[index] for index lanes 0..15, by a byte shuffle of the 16-entry grid.
template <class D, class VU>
hn::Vec<D> iq4_values(D d, VU index) {
#if HWY_TARGET == HWY_SCALAR  // one lane, no byte shuffles
  return hn::Set(d, kIQ4Levels[hn::GetLane(index)]);
#else
  const hn::Rebind<int8_t, D> d8;
  const hn::Repartition<int8_t, D> dgrid;  // the grid repeated in every 128-bit block
  const auto grid = hn::LoadDup128(dgrid, kIQ4Levels);
  const auto bytes = hn::BitCast(d8, hn::DemoteTo(hn::Rebind<uint8_t, D>(), hn::BitCast(d, index)));
  return hn::PromoteTo(d, hn::TableLookupBytes(grid, bytes));
#endif
}

// IQ4_NL: d * grid[q], Q4_0's nibble order.
struct IQ4NL {
  using Block = BlockIQ4_NL;
  static constexpr int kElems = kQK, kScaleGroup = 0, kSumGroups = 0;
  static void header(const Block& b, BlockHeader& h) { h.d = half_bits_to_float(b.d); }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    return iq4_values(d, legacy_nibbles<E>(d, b.qs));
  }
};

// IQ4_XS: 8 runs of 32 laid out as IQ4_NL's, with signed 6-bit scales (quant_iq4.h).
inline int16_t iq4xs_scale(const BlockIQ4_XS& b, int s) {
  const int low = (b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF;
  const int high = (b.scales_h >> (2 * s)) & 3;
  return static_cast<int16_t>((low | (high << 4)) - 32);
}

struct IQ4XS {
  using Block = BlockIQ4_XS;
  static constexpr int kElems = kQK_K, kScaleGroup = 32, kSumGroups = 0;
  static void header(const Block& b, BlockHeader& h) {
    h.d = half_bits_to_float(b.d);
    for (int j = 0; j < kQK_K / kQK; ++j) {
      h.scales[2 * j] = h.scales[2 * j + 1] = iq4xs_scale(b, j);
    }
  }
  template <int E, class D>
  static hn::Vec<D> codes(D d, const Block& b) {
    return iq4_values(d, legacy_nibbles<E % 32>(d, b.qs + 16 * (E / 32)));
  }
};

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#endif  // TORCHLESS_CPU_QUANT_BLOCKS_INL_H_
