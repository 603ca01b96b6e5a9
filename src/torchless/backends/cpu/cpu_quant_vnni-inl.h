// VNNI tiles for the hot types (Q4_K, Q5_K, Q6_K, Q8_0, Q4_0), compiled only for Highway's AVX3_DL
// target: `vpdpbusd` multiplies 64 unsigned weight bytes by 64 signed activation bytes (the int8
// copy of the Q8 codes) and adds each group of four products into an int32 lane, 64
// multiply-adds per instruction with no widening (the portable kernels widen both sides to
// int16 first). Weights are unpacked to unsigned codes: Q4_K and Q4_0 nibbles 0..15, Q5_K 0..31,
// Q6_K's 6-bit 0..63. Offsets: Q6_K's -32 subtracts 32 * (the activation sum of each 4-byte
// group), itself a vpdpbusd with a constant; Q4_0's -8 and Q4_K/Q5_K's mins go through the
// activation sums per block or per 16. Q8_0's signed weights enter as |w| with the activation
// taking w's sign.
//
// Batch invariance: every output's float operations are the same whether it is computed in a
// mat-vec or in a batch, at any position and with any split of rows over threads (integer sums
// are exact, so only the float steps need a fixed order; each kernel documents its own). Q4_0
// always, and Q4_K, Q5_K and Q6_K for 4 tokens or more, put 16 weight rows in the lanes of a
// vector.
//
// Highway 1.0.3's AVX3_DL target string names avxvnni but not avx512vnni; its runtime check for
// AVX3_DL does require AVX512-VNNI, so the functions here add that feature themselves.

// Per-target include guard (Highway's -inl.h convention).
#if defined(TORCHLESS_CPU_QUANT_VNNI_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TORCHLESS_CPU_QUANT_VNNI_INL_H_
#undef TORCHLESS_CPU_QUANT_VNNI_INL_H_
#else
#define TORCHLESS_CPU_QUANT_VNNI_INL_H_
#endif

#include <hwy/highway.h>

#include "torchless/backends/cpu/cpu_quant_blocks-inl.h"

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/backends/cpu/cpu_repack.h"
#include "torchless/core/quant.h"

// The full list: clang replaces (GCC extends) the target of the surrounding pragma.
#define TORCHLESS_VNNI __attribute__((target(HWY_TARGET_STR ",avx512vnni")))

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace vnni {

// int32 lane i of the result = s[base + i / per]: the integer scale of the 4-byte group i of a
// 64-element chunk whose sub-blocks have `per` * 4 elements.
TORCHLESS_VNNI inline __m512i spread_scales(__m512i s, int base, int per) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i idx = _mm512_add_epi32(
      _mm512_set1_epi32(base), per == 8 ? _mm512_srli_epi32(lane, 3) : _mm512_srli_epi32(lane, 2));
  return _mm512_permutexvar_epi32(idx, s);
}

// Per-block constants of one weight row: float scale and offset, int32 scale vectors of the
// four 64-element chunks, and the offset term's integer weights.
struct Header {
  float d = 0.0f;
  float m = 0.0f;
  __m512i scales[4];
  __m256i mins;  // int32 min of each 32-element sub-block (Q4_K)
};

// Q4_K/Q5_K header.
// The 12 scale bytes hold 8 six-bit scales and mins: sub-blocks 0..3 in the low 6 bits of
// bytes 0..3 (scales) and 4..7 (mins), sub-blocks 4..7 in the nibbles of bytes 8..11 plus the
// top 2 bits of bytes 0..3 / 4..7. Unpacked four at a time in 32-bit words.
TORCHLESS_VNNI inline void q45k_header(uint16_t d, uint16_t dmin, const uint8_t* scales,
                                       Header& h) {
  h.d = half_bits_to_float(d);
  h.m = -half_bits_to_float(dmin);
  uint32_t u[3];
  std::memcpy(u, scales, sizeof(u));
  const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  const uint64_t sc =
      (u[0] & low6) | static_cast<uint64_t>((u[2] & low4) | (((u[0] >> 6) & low2) << 4)) << 32;
  const uint64_t mn =
      (u[1] & low6) | static_cast<uint64_t>(((u[2] >> 4) & low4) | (((u[1] >> 6) & low2) << 4))
                          << 32;
  const __m512i all = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc)));
  for (int c = 0; c < 4; ++c) h.scales[c] = spread_scales(all, 2 * c, 8);
  h.mins = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn)));
}

struct Q4K {
  using Block = BlockQ4_K;
  static constexpr int kBlock = kQK_K;
  static constexpr bool kHasMins = true;
  TORCHLESS_VNNI static void header(const Block& b, Header& h) {
    q45k_header(b.d, b.dmin, b.scales, h);
  }
  // Elements 64c .. 64c + 63: the low nibbles of qs[32c ..], then their high nibbles.
  TORCHLESS_VNNI static __m512i codes(const Block& b, int c) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c));
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(q, mask);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  static constexpr int kOffset = 0;
};

// Q5_K: Q4_K's nibbles and scales, plus the fifth bit of element 32s + l in bit s of qh[l].
struct Q5K {
  using Block = BlockQ5_K;
  static constexpr int kBlock = kQK_K;
  static constexpr bool kHasMins = true;
  static constexpr int kOffset = 0;
  TORCHLESS_VNNI static void header(const Block& b, Header& h) {
    q45k_header(b.d, b.dmin, b.scales, h);
  }
  TORCHLESS_VNNI static __m512i codes(const Block& b, int c) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    const __m256i mask = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i lo5 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
    const __m256i hi5 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, mask), _mm256_slli_epi16(lo5, 4));
    const __m256i hi =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), _mm256_slli_epi16(hi5, 4));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
};

struct Q6K {
  using Block = BlockQ6_K;
  static constexpr int kBlock = kQK_K;
  static constexpr bool kHasMins = false;
  TORCHLESS_VNNI static void header(const Block& b, Header& h) {
    h.d = half_bits_to_float(b.d);
    const __m512i all =
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    for (int c = 0; c < 4; ++c) h.scales[c] = spread_scales(all, 4 * c, 4);
  }
  // Chunk c covers half c / 2 and k = 2 (c % 2) + {0, 1}: nibble (c % 2) of ql[64 (c / 2) ..]
  // (64 contiguous bytes), top bits 2k .. 2k + 1 of qh[32 (c / 2) + l].
  TORCHLESS_VNNI static __m512i codes(const Block& b, int c) {
    const int half = c / 2, k0 = 2 * (c % 2);
    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * half);
    const __m512i mask = _mm512_set1_epi8(0x0F);
    const __m512i low = (c % 2 == 0) ? _mm512_and_si512(ql, mask)
                                     : _mm512_and_si512(_mm512_srli_epi16(ql, 4), mask);
    const __m512i qh = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half)));
    // 16-bit lanes 0..15 (bytes 0..31) shift by 2 k0, lanes 16..31 by 2 k0 + 2.
    const __m512i shift = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(2 * k0),
                                                  _mm512_set1_epi16(2 * k0 + 2));
    const __m512i top = _mm512_and_si512(_mm512_srlv_epi16(qh, shift), _mm512_set1_epi8(3));
    return _mm512_or_si512(low, _mm512_slli_epi16(top, 4));
  }
  static constexpr int kOffset = 32;
};

// Weight blocks fetched ahead of use, per row stream.
inline constexpr int64_t kPrefetchBlocks = 4;

// Activation rows of one tile: int8 codes, scales and sums of NT tokens.
template <int NT>
struct Rows {
  const int8_t* q[NT];
  const float* d[NT];
  const int16_t* sums[NT];
};

// The activation sums of the 8 sub-blocks of 32 from the 16 sums per 16 of one block.
TORCHLESS_VNNI inline __m256i pair_sums(const int16_t* sums) {
  const __m256i s16 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums));
  return _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
}

// Sum of the 8 int32 lanes (exact).
TORCHLESS_VNNI inline int32_t reduce_add_256(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
}

// out[r * NT + t] = dot(weight row r, activation row t) over `cols` elements. Per block, the
// integer sums are exact and reduced to one value, which meets the float scales in a single
// FMA: acc = fma(isum, d d_x, acc), then acc = fma(msum, m d_x, acc) for the mins. That is
// the order of the rows-in-lanes kernels below too (Q4_K), so every path gives the same bits.
template <class Kind, int NR, int NT>
TORCHLESS_VNNI void dot_tile(const std::byte* const* w, const Rows<NT>& x, int64_t cols,
                             float* out) {
  using Block = typename Kind::Block;
  float acc[NR][NT] = {};
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(Kind::kOffset));
  const int64_t nblocks = cols / kQK_K;
  for (int64_t b = 0; b < nblocks; ++b) {
    __m256i sub_sums[NT];
    if constexpr (Kind::kHasMins) {
      for (int t = 0; t < NT; ++t) sub_sums[t] = pair_sums(x.sums[t] + b * 16);
    }
    for (int r = 0; r < NR; ++r) {
      if (b + kPrefetchBlocks < nblocks) {
        _mm_prefetch(reinterpret_cast<const char*>(w[r] + (b + kPrefetchBlocks) * sizeof(Block)),
                     _MM_HINT_T0);
      }
      const Block& block = reinterpret_cast<const Block*>(w[r])[b];
      Header h;
      Kind::header(block, h);
      __m512i sum[NT];
      for (int t = 0; t < NT; ++t) sum[t] = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        const __m512i wc = Kind::codes(block, c);
        for (int t = 0; t < NT; ++t) {
          const __m512i xc = _mm512_loadu_si512(x.q[t] + b * kQK_K + 64 * c);
          __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wc, xc);
          if constexpr (Kind::kOffset != 0) {
            p = _mm512_sub_epi32(p, _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xc));
          }
          sum[t] = _mm512_add_epi32(sum[t], _mm512_mullo_epi32(p, h.scales[c]));
        }
      }
      for (int t = 0; t < NT; ++t) {
        const float dx = x.d[t][b];
        const auto isum = static_cast<float>(_mm512_reduce_add_epi32(sum[t]));
        acc[r][t] = std::fma(isum, h.d * dx, acc[r][t]);
        if constexpr (Kind::kHasMins) {
          const auto msum =
              static_cast<float>(reduce_add_256(_mm256_mullo_epi32(h.mins, sub_sums[t])));
          acc[r][t] = std::fma(msum, h.m * dx, acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) out[r * NT + t] = acc[r][t];
  }
}

// --- Q8_0 / Q4_0: 32-element blocks, two per 512-bit vector -------------------------------

// Q8_0's weights are signed: |w| goes in as the unsigned operand and the activation takes the
// weight's sign (w * x = |w| * (sign(w) x); |-128| = 128 is still exact as u8).
struct Q8_0 {
  using Block = BlockQ8_0;
  static constexpr int kBlock = kQK;
  static constexpr int kOffset = 0;
  TORCHLESS_VNNI static __m256i bytes(const Block& b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
  }
};

// Blocks b and b + 1 (b + 1 only when `pair`; zeros otherwise) in one vector.
template <class Kind>
TORCHLESS_VNNI inline __m512i legacy_codes(const typename Kind::Block* row, int64_t b, bool pair) {
  const __m512i lo = _mm512_zextsi256_si512(Kind::bytes(row[b]));
  return pair ? _mm512_inserti64x4(lo, Kind::bytes(row[b + 1]), 1) : lo;
}

TORCHLESS_VNNI inline __m512i legacy_acts(const int8_t* x, int64_t b, bool pair) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + b * kQK));
  if (!pair) return _mm512_zextsi256_si512(lo);
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + (b + 1) * kQK));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// out[r * NT + t] = dot(weight row r, activation row t) over `cols` elements.
template <class Kind, int NR, int NT>
TORCHLESS_VNNI void legacy_dot_tile(const std::byte* const* w, const Rows<NT>& x, int64_t cols,
                                    float* out) {
  using Block = typename Kind::Block;
  __m512 acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(Kind::kOffset));
  const int64_t nblocks = cols / kQK;
  for (int64_t b = 0; b < nblocks; b += 2) {
    const bool pair = b + 1 < nblocks;
    __m512i xc[NT], xoff[NT];
    for (int t = 0; t < NT; ++t) {
      xc[t] = legacy_acts(x.q[t], b, pair);
      // The offset's products, once per token for all rows.
      if constexpr (Kind::kOffset != 0) {
        xoff[t] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xc[t]);
      }
    }
    for (int r = 0; r < NR; ++r) {
      const Block* row = reinterpret_cast<const Block*>(w[r]);
      const __m512i wc = legacy_codes<Kind>(row, b, pair);
      const float dw0 = half_bits_to_float(row[b].d);
      const float dw1 = pair ? half_bits_to_float(row[b + 1].d) : 0.0f;
      for (int t = 0; t < NT; ++t) {
        __m512i p;
        if constexpr (Kind::kOffset == 0) {
          const __m512i wabs = _mm512_abs_epi8(wc);
          const __m512i xs =
              _mm512_mask_sub_epi8(xc[t], _mm512_movepi8_mask(wc), _mm512_setzero_si512(), xc[t]);
          p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wabs, xs);
        } else {
          p = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wc, xc[t]), xoff[t]);
        }
        const float s1 = pair ? dw1 * x.d[t][b + 1] : 0.0f;
        const __m512 scale =
            _mm512_insertf32x8(_mm512_set1_ps(dw0 * x.d[t][b]), _mm256_set1_ps(s1), 1);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) out[r * NT + t] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

// --- Q4_0 with rows in lanes ----------------------------------------------------------------
// Sixteen weight rows share every vector: int32 lane j belongs to row j, so one block of 16
// rows meets a token in 8 vpdpbusd whose activation operand is a broadcast 4-byte group, and
// the block scales of the 16 rows form one vector: per block and token only one conversion,
// one multiply and one FMA serve 16 outputs (the 32-elements-per-vector layout above spends
// those per output). Each output has a single float accumulator fed block by block in order,
// acc = fma(float(isum_b - 8 xsum_b), d_w,b * d_x,b, acc), and its lane never meets another
// row's, so the mat-vec, any batch and any split of rows over threads give the same bits.
// Blocks are turned into this layout on the fly: once per row group and token tile into
// per-thread scratch for a batch, in registers for the mat-vec.

inline constexpr int kLaneRows = 16;
inline constexpr int64_t kLanePrefetch = 8;  // blocks ahead, per row

// One block of 16 rows: codes[i] (i < 4) holds the low nibbles of qs bytes 4i .. 4i + 3
// (elements 4i .. 4i + 3), codes[4 + i] their high nibbles (elements 16 + 4i ..), lane j
// from row j; d the 16 block scales.
struct Q4_0Lanes {
  __m512i codes[8];
  __m512 d;
};

// Q4_0Lanes in memory (per-thread scratch: std::vector does not align to 64 here).
struct PackedLanes {
  uint8_t codes[8][64];
  float d[kLaneRows];
};

TORCHLESS_VNNI inline void pack_lanes(const Q4_0Lanes& w, PackedLanes& p) {
  for (int i = 0; i < 8; ++i) _mm512_storeu_si512(p.codes[i], w.codes[i]);
  _mm512_storeu_ps(p.d, w.d);
}

TORCHLESS_VNNI inline void unpack_lanes(const PackedLanes& p, Q4_0Lanes& w) {
  for (int i = 0; i < 8; ++i) w.codes[i] = _mm512_loadu_si512(p.codes[i]);
  w.d = _mm512_loadu_ps(p.d);
}

// The 16 row pointers of a group of `count` rows from `first` (the missing rows repeat the
// last one: their lanes are computed and never stored) and their byte offsets from row 0.
struct LaneRows {
  const BlockQ4_0* row[kLaneRows];
  __m512i offsets;
};

TORCHLESS_VNNI inline LaneRows lane_rows(const MatmulOperands& m, int64_t first, int count) {
  LaneRows g;
  alignas(64) int32_t off[kLaneRows];
  for (int j = 0; j < kLaneRows; ++j) {
    const int64_t r = first + std::min(j, count - 1);
    g.row[j] = reinterpret_cast<const BlockQ4_0*>(m.w + static_cast<size_t>(r) * m.w_row_bytes);
    off[j] = static_cast<int32_t>(static_cast<size_t>(std::min(j, count - 1)) * m.w_row_bytes);
  }
  g.offsets = _mm512_load_si512(off);
  return g;
}

// words[i] lane j = the 32-bit word i of the 16 bytes at src(j), j < 16: four rows' bytes
// per vector, then a 4 x 4 transpose of words across them.
template <class Src>
TORCHLESS_VNNI inline void transpose_words(const Src& src, __m512i* words) {
  __m512i a[4];
  for (int k = 0; k < 4; ++k) {
    auto row = [&](int j) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src(4 * k + j)));
    };
    __m512i v = _mm512_castsi128_si512(row(0));
    v = _mm512_inserti32x4(v, row(1), 1);
    v = _mm512_inserti32x4(v, row(2), 2);
    a[k] = _mm512_inserti32x4(v, row(3), 3);
  }
  for (int i = 0; i < 4; ++i) {
    // Word i of the four rows of a[0] (lanes 0..3) and of a[1] (lanes 4..7), twice.
    const __m512i idx = _mm512_setr_epi32(i, 4 + i, 8 + i, 12 + i, 16 + i, 20 + i, 24 + i, 28 + i,
                                          i, 4 + i, 8 + i, 12 + i, 16 + i, 20 + i, 24 + i, 28 + i);
    const __m512i lo = _mm512_permutex2var_epi32(a[0], idx, a[1]);
    const __m512i hi = _mm512_permutex2var_epi32(a[2], idx, a[3]);
    words[i] = _mm512_shuffle_i64x2(lo, hi, 0x44);
  }
}

// Block b of a row group, rows in lanes.
TORCHLESS_VNNI inline void load_lanes(const LaneRows& g, int64_t b, Q4_0Lanes& out) {
  __m512i words[4];
  transpose_words([&](int j) { return g.row[j][b].qs; }, words);
  const __m512i mask = _mm512_set1_epi8(0x0F);
  for (int i = 0; i < 4; ++i) {
    out.codes[i] = _mm512_and_si512(words[i], mask);
    out.codes[4 + i] = _mm512_and_si512(_mm512_srli_epi32(words[i], 4), mask);
  }
  // Scalar loads measured faster than a gather here.
  alignas(32) uint16_t d[kLaneRows];
  for (int j = 0; j < kLaneRows; ++j) d[j] = g.row[j][b].d;
  out.d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d)));
}

TORCHLESS_VNNI inline __m512i broadcast_group(const int8_t* x, int i) {
  int32_t v;
  std::memcpy(&v, x + 4 * i, sizeof v);
  return _mm512_set1_epi32(v);
}

// Activations of one token for the lane kernels: int8 codes, block scales, block code sums.
struct LaneToken {
  const int8_t* q;
  const float* d;
  const int16_t* sums;
};

TORCHLESS_VNNI inline LaneToken lane_token(const MatmulOperands& m, int64_t t) {
  const int64_t blocks = m.cols / kQK;
  return {m.xq8 + t * m.cols, m.xd + t * blocks, m.xsum + t * blocks};
}

// acc += the products of block b (rows in lanes) with one token: the only float operations
// an output sees, the same in every path.
TORCHLESS_VNNI inline __m512 lanes_step(const Q4_0Lanes& w, const LaneToken& x, int64_t b,
                                        __m512 acc) {
  const int8_t* xb = x.q + b * kQK;
  __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.codes[0], broadcast_group(xb, 0));
  __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.codes[1], broadcast_group(xb, 1));
  for (int i = 2; i < 8; i += 2) {
    s0 = _mm512_dpbusd_epi32(s0, w.codes[i], broadcast_group(xb, i));
    s1 = _mm512_dpbusd_epi32(s1, w.codes[i + 1], broadcast_group(xb, i + 1));
  }
  // Codes are stored + 8: subtract 8 x (the block's activation sum).
  const __m512i isum = _mm512_sub_epi32(_mm512_add_epi32(s0, s1),
                                        _mm512_set1_epi32(8 * static_cast<int32_t>(x.sums[b])));
  const __m512 scale = _mm512_mul_ps(w.d, _mm512_set1_ps(x.d[b]));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc);
}

TORCHLESS_VNNI inline void store_lanes(const MatmulOperands& m, int64_t t, int64_t first, int count,
                                       __m512 acc) {
  const __mmask16 keep = static_cast<__mmask16>((1u << count) - 1u);
  _mm512_mask_storeu_ps(m.y + t * m.y_stride + first, keep, acc);
}

// NT tokens from t0, weights read and rearranged block by block (the mat-vec).
template <int NT>
TORCHLESS_VNNI void lanes_direct(const MatmulOperands& m, const LaneRows& g, int64_t first,
                                 int count, int64_t t0) {
  LaneToken x[NT];
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) {
    x[t] = lane_token(m, t0 + t);
    acc[t] = _mm512_setzero_ps();
  }
  Q4_0Lanes w;
  for (int64_t b = 0; b < m.cols / kQK; ++b) {
    // Sixteen row streams: each row's line ahead, every other block (a line holds 3.5).
    if (b % 2 == 0 && b + kLanePrefetch < m.cols / kQK) {
      for (int j = 0; j < kLaneRows; ++j) {
        _mm_prefetch(reinterpret_cast<const char*>(&g.row[j][b + kLanePrefetch]), _MM_HINT_T0);
      }
    }
    load_lanes(g, b, w);
    for (int t = 0; t < NT; ++t) acc[t] = lanes_step(w, x[t], b, acc[t]);
  }
  for (int t = 0; t < NT; ++t) store_lanes(m, t0 + t, first, count, acc[t]);
}

// NT tokens from t0 over blocks already rearranged into `packed`.
template <int NT>
TORCHLESS_VNNI void lanes_packed(const MatmulOperands& m, const PackedLanes* packed, int64_t first,
                                 int count, int64_t t0) {
  LaneToken x[NT];
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) {
    x[t] = lane_token(m, t0 + t);
    acc[t] = _mm512_setzero_ps();
  }
  Q4_0Lanes w;
  for (int64_t b = 0; b < m.cols / kQK; ++b) {
    unpack_lanes(packed[b], w);
    for (int t = 0; t < NT; ++t) acc[t] = lanes_step(w, x[t], b, acc[t]);
  }
  for (int t = 0; t < NT; ++t) store_lanes(m, t0 + t, first, count, acc[t]);
}

// Tokens per pass over a packed row group.
inline constexpr int kLaneTokens = 4;

template <int NT = kLaneTokens - 1>
TORCHLESS_VNNI void lanes_packed_tail(const MatmulOperands& m, const PackedLanes* packed,
                                      int64_t first, int count, int64_t t0, int64_t left) {
  if constexpr (NT >= 1) {
    if (left == NT) return lanes_packed<NT>(m, packed, first, count, t0);
    lanes_packed_tail<NT - 1>(m, packed, first, count, t0, left);
  }
}

TORCHLESS_VNNI inline void q4_0_lanes(const MatmulOperands& m, int64_t row0, int64_t row1,
                                      int64_t tok0, int64_t tok1) {
  const int64_t blocks = m.cols / kQK;
  for (int64_t first = row0; first < row1; first += kLaneRows) {
    const int count = static_cast<int>(std::min<int64_t>(kLaneRows, row1 - first));
    const LaneRows g = lane_rows(m, first, count);
    const int64_t n = tok1 - tok0;
    // Up to kLaneTokens tokens (decode, also of several concurrent streams): rearranged in
    // registers as the mat-vec; packing into scratch pays only when more token groups reuse it
    // (4 tokens measured ~1.4x faster this way on 2 threads).
    if (n <= kLaneTokens) {
      if (n == 1) lanes_direct<1>(m, g, first, count, tok0);
      if (n == 2) lanes_direct<2>(m, g, first, count, tok0);
      if (n == 3) lanes_direct<3>(m, g, first, count, tok0);
      if (n == 4) lanes_direct<4>(m, g, first, count, tok0);
      continue;
    }
    // Grows to the largest row seen, then is reused: no allocation per call.
    thread_local std::vector<PackedLanes> packed;
    if (packed.size() < static_cast<size_t>(blocks)) packed.resize(static_cast<size_t>(blocks));
    for (int64_t b = 0; b < blocks; ++b) {
      Q4_0Lanes w;
      load_lanes(g, b, w);
      pack_lanes(w, packed[static_cast<size_t>(b)]);
    }
    int64_t t = tok0;
    for (; t + kLaneTokens <= tok1; t += kLaneTokens) {
      lanes_packed<kLaneTokens>(m, packed.data(), first, count, t);
    }
    lanes_packed_tail(m, packed.data(), first, count, t, tok1 - t);
  }
}

// --- Q4_K with rows in lanes (batches of 4 tokens or more) ----------------------------------
// As Q4_0 above: 16 rows per vector, one block of them rearranged once per row group and token
// tile into per-thread scratch. Per block and token the integer sums (codes x activations
// times the sub-block scales; mins x activation sums) are exact, and each output sees
// acc = fma(isum, d d_x, acc), acc = fma(msum, m d_x, acc), exactly as dot_tile computes it
// for the mat-vec.
struct PackedQ4K {
  uint8_t codes[8][8][64];  // [sub-block][4-element group]: unsigned codes, rows in lanes
  int32_t scales[8][kLaneRows];
  int32_t mins[8][kLaneRows];
  float d[kLaneRows];
  float m[kLaneRows];  // -dmin
};

// The 16 row pointers of a group of `count` rows of K-type blocks (missing rows repeat the last).
template <class Block>
struct KLaneRows {
  const Block* row[kLaneRows];
};

template <class Block>
TORCHLESS_VNNI inline KLaneRows<Block> k_lane_rows(const MatmulOperands& m, int64_t first,
                                                   int count) {
  KLaneRows<Block> g;
  for (int j = 0; j < kLaneRows; ++j) {
    const int64_t r = first + std::min(j, count - 1);
    g.row[j] = reinterpret_cast<const Block*>(m.w + static_cast<size_t>(r) * m.w_row_bytes);
  }
  return g;
}

TORCHLESS_VNNI inline void pack_q4k(const KLaneRows<BlockQ4_K>& g, int64_t b, PackedQ4K& p) {
  const __m512i mask = _mm512_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {
    for (int half = 0; half < 2; ++half) {
      __m512i words[4];
      transpose_words([&](int j) { return g.row[j][b].qs + 32 * c + 16 * half; }, words);
      for (int i = 0; i < 4; ++i) {
        const __m512i lo = _mm512_and_si512(words[i], mask);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(words[i], 4), mask);
        _mm512_storeu_si512(p.codes[2 * c][4 * half + i], lo);
        _mm512_storeu_si512(p.codes[2 * c + 1][4 * half + i], hi);
      }
    }
  }
  alignas(32) uint16_t d[kLaneRows], dmin[kLaneRows];
  for (int j = 0; j < kLaneRows; ++j) {
    const BlockQ4_K& blk = g.row[j][b];
    d[j] = blk.d;
    dmin[j] = blk.dmin;
    for (int sub = 0; sub < 8; ++sub) {
      uint8_t sc, mn;
      q4k_scale_min(sub, blk.scales, sc, mn);
      p.scales[sub][j] = sc;
      p.mins[sub][j] = mn;
    }
  }
  _mm512_storeu_ps(p.d, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d))));
  const __m512 dm = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(dmin)));
  _mm512_storeu_ps(p.m, _mm512_sub_ps(_mm512_setzero_ps(), dm));
}

// Q5_K in Q4_K's packed layout: the same scales and mins, codes of 5 bits instead of 4.
TORCHLESS_VNNI inline void pack_q5k(const KLaneRows<BlockQ5_K>& g, int64_t b, PackedQ4K& p) {
  alignas(64) uint8_t codes[kLaneRows][kQK_K];  // the 16 rows' codes in element order
  alignas(32) uint16_t d[kLaneRows], dmin[kLaneRows];
  for (int j = 0; j < kLaneRows; ++j) {
    const BlockQ5_K& blk = g.row[j][b];
    for (int c = 0; c < 4; ++c) _mm512_store_si512(codes[j] + 64 * c, Q5K::codes(blk, c));
    for (int sub = 0; sub < 8; ++sub) {
      uint8_t sc, mn;
      q4k_scale_min(sub, blk.scales, sc, mn);
      p.scales[sub][j] = sc;
      p.mins[sub][j] = mn;
    }
    d[j] = blk.d;
    dmin[j] = blk.dmin;
  }
  for (int q = 0; q < kQK_K / 16; ++q) {
    __m512i words[4];
    transpose_words([&](int j) { return codes[j] + 16 * q; }, words);
    // 4-element groups 4q .. 4q + 3: sub-block (4q + i) / 8, group (4q + i) % 8.
    for (int i = 0; i < 4; ++i) _mm512_storeu_si512(p.codes[q / 2][4 * (q % 2) + i], words[i]);
  }
  _mm512_storeu_ps(p.d, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d))));
  const __m512 dm = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(dmin)));
  _mm512_storeu_ps(p.m, _mm512_sub_ps(_mm512_setzero_ps(), dm));
}

template <int NT>
TORCHLESS_VNNI void q4k_packed(const MatmulOperands& m, const PackedQ4K* packed, int64_t first,
                               int count, int64_t t0) {
  const int64_t blocks = m.cols / kQK_K;
  const int8_t* xq[NT];
  const float* xd[NT];
  const int16_t* xs[NT];
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = m.xq8 + (t0 + t) * m.cols;
    xd[t] = m.xd + (t0 + t) * blocks;
    xs[t] = m.xsum + (t0 + t) * (m.cols / 16);
    acc[t] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const PackedQ4K& p = packed[b];
    __m512i isum[NT], msum[NT];
    for (int t = 0; t < NT; ++t) isum[t] = msum[t] = _mm512_setzero_si512();
    for (int sub = 0; sub < 8; ++sub) {
      __m512i codes[8];
      for (int i = 0; i < 8; ++i) codes[i] = _mm512_loadu_si512(p.codes[sub][i]);
      const __m512i scale = _mm512_loadu_si512(p.scales[sub]);
      const __m512i mins = _mm512_loadu_si512(p.mins[sub]);
      for (int t = 0; t < NT; ++t) {
        const int8_t* xb = xq[t] + b * kQK_K + 32 * sub;
        __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[0], broadcast_group(xb, 0));
        __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[1], broadcast_group(xb, 1));
        for (int i = 2; i < 8; i += 2) {
          s0 = _mm512_dpbusd_epi32(s0, codes[i], broadcast_group(xb, i));
          s1 = _mm512_dpbusd_epi32(s1, codes[i + 1], broadcast_group(xb, i + 1));
        }
        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), scale));
        const int16_t* sums = xs[t] + b * 16 + 2 * sub;
        const int32_t xsum = static_cast<int32_t>(sums[0]) + sums[1];
        msum[t] = _mm512_add_epi32(msum[t], _mm512_mullo_epi32(mins, _mm512_set1_epi32(xsum)));
      }
    }
    const __m512 d = _mm512_loadu_ps(p.d), mneg = _mm512_loadu_ps(p.m);
    for (int t = 0; t < NT; ++t) {
      const __m512 dx = _mm512_set1_ps(xd[t][b]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, dx), acc[t]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum[t]), _mm512_mul_ps(mneg, dx), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) store_lanes(m, t0 + t, first, count, acc[t]);
}

template <int NT = kLaneTokens - 1>
TORCHLESS_VNNI void q4k_packed_tail(const MatmulOperands& m, const PackedQ4K* packed, int64_t first,
                                    int count, int64_t t0, int64_t left) {
  if constexpr (NT >= 1) {
    if (left == NT) return q4k_packed<NT>(m, packed, first, count, t0);
    q4k_packed_tail<NT - 1>(m, packed, first, count, t0, left);
  }
}

// Rows in groups of 16, tokens in groups of kLaneTokens (at least that many tokens); Q4_K and
// Q5_K blocks, packed by pack_q4k / pack_q5k.
template <class Block>
TORCHLESS_VNNI inline void q45k_lanes(const MatmulOperands& m, int64_t row0, int64_t row1,
                                      int64_t tok0, int64_t tok1) {
  const int64_t blocks = m.cols / kQK_K;
  thread_local std::vector<PackedQ4K> packed;
  if (packed.size() < static_cast<size_t>(blocks)) packed.resize(static_cast<size_t>(blocks));
  for (int64_t first = row0; first < row1; first += kLaneRows) {
    const int count = static_cast<int>(std::min<int64_t>(kLaneRows, row1 - first));
    const auto g = k_lane_rows<Block>(m, first, count);
    for (int64_t b = 0; b < blocks; ++b) {
      if constexpr (std::is_same_v<Block, BlockQ4_K>) {
        pack_q4k(g, b, packed[static_cast<size_t>(b)]);
      } else {
        pack_q5k(g, b, packed[static_cast<size_t>(b)]);
      }
    }
    int64_t t = tok0;
    for (; t + kLaneTokens <= tok1; t += kLaneTokens) {
      q4k_packed<kLaneTokens>(m, packed.data(), first, count, t);
    }
    q4k_packed_tail(m, packed.data(), first, count, t, tok1 - t);
  }
}

// --- Q4_K repacked at load (cpu_repack.h): mat-vec and batches ------------------------------
// The layout of PackedQ4K with the nibbles still paired and the scales still bytes, read in
// place: per block of 16 rows and token, 32 loads of 64 code bytes, 64 vpdpbusd, and the same
// exact integer sums as q4k_packed and dot_tile, met by the same two FMAs per output
// (acc = fma(isum, d d_x, acc), acc = fma(msum, m d_x, acc)), so every path gives the same bits.

// Sub-block scales (or mins) of the 16 rows as int32 lanes.
TORCHLESS_VNNI inline __m512i lane_bytes_i32(const uint8_t* v) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
}

template <int NT>
TORCHLESS_VNNI void q4k_repacked(const MatmulOperands& m, int64_t first, int count, int64_t t0) {
  const int64_t blocks = m.cols / kQK_K;
  const auto* group = reinterpret_cast<const RepackedQ4K*>(m.w) + (first / kLaneRows) * blocks;
  const int8_t* xq[NT];
  const float* xd[NT];
  const int16_t* xs[NT];
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = m.xq8 + (t0 + t) * m.cols;
    xd[t] = m.xd + (t0 + t) * blocks;
    xs[t] = m.xsum + (t0 + t) * (m.cols / 16);
    acc[t] = _mm512_setzero_ps();
  }
  // High nibbles enter in place (16 x the code: 4 x 240 x 127 per product group stays far
  // inside int32) and their sums are shifted back exactly: one AND per nibble, no shift.
  const __m512i mask_lo = _mm512_set1_epi8(0x0F);
  const __m512i mask_hi = _mm512_set1_epi8(static_cast<char>(0xF0));
  for (int64_t b = 0; b < blocks; ++b) {
    const RepackedQ4K& p = group[b];
    __m512i isum[NT], msum[NT];
    for (int t = 0; t < NT; ++t) isum[t] = msum[t] = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      // Sub-blocks 2c (low nibbles) and 2c + 1 (high), two accumulators each.
      __m512i lo0[NT], lo1[NT], hi0[NT], hi1[NT];
      for (int t = 0; t < NT; ++t) lo0[t] = lo1[t] = hi0[t] = hi1[t] = _mm512_setzero_si512();
      for (int g = 0; g < 8; g += 2) {
        const __m512i w0 = _mm512_load_si512(p.qs[c][g]);
        const __m512i w1 = _mm512_load_si512(p.qs[c][g + 1]);
        const __m512i l0 = _mm512_and_si512(w0, mask_lo), l1 = _mm512_and_si512(w1, mask_lo);
        const __m512i h0 = _mm512_and_si512(w0, mask_hi), h1 = _mm512_and_si512(w1, mask_hi);
        for (int t = 0; t < NT; ++t) {
          const int8_t* xl = xq[t] + b * kQK_K + 64 * c;
          lo0[t] = _mm512_dpbusd_epi32(lo0[t], l0, broadcast_group(xl, g));
          lo1[t] = _mm512_dpbusd_epi32(lo1[t], l1, broadcast_group(xl, g + 1));
          hi0[t] = _mm512_dpbusd_epi32(hi0[t], h0, broadcast_group(xl + 32, g));
          hi1[t] = _mm512_dpbusd_epi32(hi1[t], h1, broadcast_group(xl + 32, g + 1));
        }
      }
      const __m512i scale_lo = lane_bytes_i32(p.scales[2 * c]);
      const __m512i scale_hi = lane_bytes_i32(p.scales[2 * c + 1]);
      const __m512i min_lo = lane_bytes_i32(p.mins[2 * c]);
      const __m512i min_hi = lane_bytes_i32(p.mins[2 * c + 1]);
      for (int t = 0; t < NT; ++t) {
        const __m512i slo = _mm512_mullo_epi32(_mm512_add_epi32(lo0[t], lo1[t]), scale_lo);
        const __m512i hsum = _mm512_srai_epi32(_mm512_add_epi32(hi0[t], hi1[t]), 4);
        const __m512i shi = _mm512_mullo_epi32(hsum, scale_hi);
        isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(slo, shi));
        const int16_t* sums = xs[t] + b * 16 + 4 * c;  // per 16: sub-block 2c is sums 0, 1
        const __m512i xlo = _mm512_set1_epi32(static_cast<int32_t>(sums[0]) + sums[1]);
        const __m512i xhi = _mm512_set1_epi32(static_cast<int32_t>(sums[2]) + sums[3]);
        msum[t] = _mm512_add_epi32(msum[t], _mm512_add_epi32(_mm512_mullo_epi32(min_lo, xlo),
                                                             _mm512_mullo_epi32(min_hi, xhi)));
      }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p.d)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p.dmin)));
    const __m512 mneg = _mm512_sub_ps(_mm512_setzero_ps(), dmin);
    for (int t = 0; t < NT; ++t) {
      const __m512 dx = _mm512_set1_ps(xd[t][b]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, dx), acc[t]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum[t]), _mm512_mul_ps(mneg, dx), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) store_lanes(m, t0 + t, first, count, acc[t]);
}

template <int NT = kLaneTokens - 1>
TORCHLESS_VNNI void q4k_repacked_tail(const MatmulOperands& m, int64_t first, int count, int64_t t0,
                                      int64_t left) {
  if constexpr (NT >= 1) {
    if (left == NT) return q4k_repacked<NT>(m, first, count, t0);
    q4k_repacked_tail<NT - 1>(m, first, count, t0, left);
  }
}

// Rows in groups of 16 from row0 (a multiple of 16), tokens kLaneTokens at a time: the same
// kernel for the mat-vec and every batch, with nothing packed per call.
TORCHLESS_VNNI inline void q4k_repacked_lanes(const MatmulOperands& m, int64_t row0, int64_t row1,
                                              int64_t tok0, int64_t tok1) {
  for (int64_t first = row0; first < row1; first += kLaneRows) {
    const int count = static_cast<int>(std::min<int64_t>(kLaneRows, row1 - first));
    int64_t t = tok0;
    for (; t + kLaneTokens <= tok1; t += kLaneTokens) q4k_repacked<kLaneTokens>(m, first, count, t);
    q4k_repacked_tail(m, first, count, t, tok1 - t);
  }
}

// --- Q6_K with rows in lanes (batches of 4 tokens or more) ----------------------------------
// As Q4_K above, with 16 sub-blocks of 16 elements and an offset of 32 instead of mins. Per
// block and token, lane j gets the exact isum = sum over sub-blocks s of scale_js x (codes x
// activations - 32 x the activation sum of s), and each output sees acc = fma(isum, d d_x,
// acc), exactly as dot_tile computes it for the mat-vec.
struct PackedQ6K {
  uint8_t codes[64][64];  // [4-element group]: unsigned 6-bit codes, rows in lanes
  int32_t scales[16][kLaneRows];
  float d[kLaneRows];
};

TORCHLESS_VNNI inline void pack_q6k(const KLaneRows<BlockQ6_K>& g, int64_t b, PackedQ6K& p) {
  // The 16 rows' codes in element order, then a 4 x 4 transpose of words per 16 elements.
  alignas(64) uint8_t codes[kLaneRows][kQK_K];
  alignas(32) uint16_t d[kLaneRows];
  for (int j = 0; j < kLaneRows; ++j) {
    const BlockQ6_K& blk = g.row[j][b];
    for (int c = 0; c < 4; ++c) _mm512_store_si512(codes[j] + 64 * c, Q6K::codes(blk, c));
    for (int sub = 0; sub < 16; ++sub) p.scales[sub][j] = blk.scales[sub];
    d[j] = blk.d;
  }
  for (int q = 0; q < kQK_K / 16; ++q) {
    __m512i words[4];
    transpose_words([&](int j) { return codes[j] + 16 * q; }, words);
    for (int i = 0; i < 4; ++i) _mm512_storeu_si512(p.codes[4 * q + i], words[i]);
  }
  _mm512_storeu_ps(p.d, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d))));
}

template <int NT>
TORCHLESS_VNNI void q6k_packed(const MatmulOperands& m, const PackedQ6K* packed, int64_t first,
                               int count, int64_t t0) {
  const int64_t blocks = m.cols / kQK_K;
  const int8_t* xq[NT];
  const float* xd[NT];
  const int16_t* xs[NT];
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = m.xq8 + (t0 + t) * m.cols;
    xd[t] = m.xd + (t0 + t) * blocks;
    xs[t] = m.xsum + (t0 + t) * (m.cols / 16);
    acc[t] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const PackedQ6K& p = packed[b];
    __m512i isum[NT];
    for (int t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
    for (int sub = 0; sub < 16; ++sub) {
      __m512i codes[4];
      for (int i = 0; i < 4; ++i) codes[i] = _mm512_loadu_si512(p.codes[4 * sub + i]);
      const __m512i scale = _mm512_loadu_si512(p.scales[sub]);
      for (int t = 0; t < NT; ++t) {
        const int8_t* xb = xq[t] + b * kQK_K + 16 * sub;
        __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[0], broadcast_group(xb, 0));
        __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[1], broadcast_group(xb, 1));
        s0 = _mm512_dpbusd_epi32(s0, codes[2], broadcast_group(xb, 2));
        s1 = _mm512_dpbusd_epi32(s1, codes[3], broadcast_group(xb, 3));
        const __m512i offset = _mm512_set1_epi32(32 * static_cast<int32_t>(xs[t][b * 16 + sub]));
        const __m512i sum = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), offset);
        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(sum, scale));
      }
    }
    const __m512 d = _mm512_loadu_ps(p.d);
    for (int t = 0; t < NT; ++t) {
      const __m512 dx = _mm512_set1_ps(xd[t][b]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, dx), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) store_lanes(m, t0 + t, first, count, acc[t]);
}

template <int NT = kLaneTokens - 1>
TORCHLESS_VNNI void q6k_packed_tail(const MatmulOperands& m, const PackedQ6K* packed, int64_t first,
                                    int count, int64_t t0, int64_t left) {
  if constexpr (NT >= 1) {
    if (left == NT) return q6k_packed<NT>(m, packed, first, count, t0);
    q6k_packed_tail<NT - 1>(m, packed, first, count, t0, left);
  }
}

// Rows in groups of 16, tokens in groups of kLaneTokens (at least that many tokens).
TORCHLESS_VNNI inline void q6k_lanes(const MatmulOperands& m, int64_t row0, int64_t row1,
                                     int64_t tok0, int64_t tok1) {
  const int64_t blocks = m.cols / kQK_K;
  thread_local std::vector<PackedQ6K> packed;
  if (packed.size() < static_cast<size_t>(blocks)) packed.resize(static_cast<size_t>(blocks));
  for (int64_t first = row0; first < row1; first += kLaneRows) {
    const int count = static_cast<int>(std::min<int64_t>(kLaneRows, row1 - first));
    const auto g = k_lane_rows<BlockQ6_K>(m, first, count);
    for (int64_t b = 0; b < blocks; ++b) pack_q6k(g, b, packed[static_cast<size_t>(b)]);
    int64_t t = tok0;
    for (; t + kLaneTokens <= tok1; t += kLaneTokens) {
      q6k_packed<kLaneTokens>(m, packed.data(), first, count, t);
    }
    q6k_packed_tail(m, packed.data(), first, count, t, tok1 - t);
  }
}

template <class Kind, int NR, int NT>
TORCHLESS_VNNI void tile(const MatmulOperands& m, int64_t r0, int64_t t0) {
  const std::byte* w[NR];
  for (int r = 0; r < NR; ++r) w[r] = m.w + static_cast<size_t>(r0 + r) * m.w_row_bytes;
  Rows<NT> x;
  for (int t = 0; t < NT; ++t) {
    x.q[t] = m.xq8 + (t0 + t) * m.cols;
    x.d[t] = m.xd + (t0 + t) * (m.cols / Kind::kBlock);
    x.sums[t] = m.xsum ? m.xsum + (t0 + t) * (m.cols / 16) : nullptr;
  }
  float out[NR * NT];
  if constexpr (Kind::kBlock == kQK) {
    legacy_dot_tile<Kind, NR, NT>(w, x, m.cols, out);
  } else {
    dot_tile<Kind, NR, NT>(w, x, m.cols, out);
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) m.y[(t0 + t) * m.y_stride + r0 + r] = out[r * NT + t];
  }
}

// Tiles of 2 rows x 4 tokens where there are at least 4 tokens, narrower ones at the edges.
template <class Kind>
TORCHLESS_VNNI void tiles(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                          int64_t tok1) {
  if (tok1 - tok0 < 4) {
    for (int64_t r = row0; r < row1; ++r) {
      for (int64_t t = tok0; t < tok1; ++t) tile<Kind, 1, 1>(m, r, t);
    }
    return;
  }
  int64_t r = row0;
  for (; r + 2 <= row1; r += 2) {
    int64_t t = tok0;
    for (; t + 4 <= tok1; t += 4) tile<Kind, 2, 4>(m, r, t);
    for (; t < tok1; ++t) tile<Kind, 2, 1>(m, r, t);
  }
  if (r < row1) {
    int64_t t = tok0;
    for (; t + 4 <= tok1; t += 4) tile<Kind, 1, 4>(m, r, t);
    for (; t < tok1; ++t) tile<Kind, 1, 1>(m, r, t);
  }
}

}  // namespace vnni

// Runs the tile with VNNI and returns true where the type has a VNNI kernel and the int8
// activations are there; false leaves the tile to the portable kernels.
inline bool VnniMatmulTile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                           int64_t tok1) {
  if (m.xq8 == nullptr) return false;
  if (m.w_repacked) {  // Q4_K only (cpu_repack.h)
    vnni::q4k_repacked_lanes(m, row0, row1, tok0, tok1);
    return true;
  }
  switch (m.wtype) {
    case DType::Q4_K:
      if (tok1 - tok0 >= vnni::kLaneTokens) {
        vnni::q45k_lanes<BlockQ4_K>(m, row0, row1, tok0, tok1);
      } else {
        vnni::tiles<vnni::Q4K>(m, row0, row1, tok0, tok1);
      }
      return true;
    case DType::Q6_K:
      if (tok1 - tok0 >= vnni::kLaneTokens) {
        vnni::q6k_lanes(m, row0, row1, tok0, tok1);
      } else {
        vnni::tiles<vnni::Q6K>(m, row0, row1, tok0, tok1);
      }
      return true;
    case DType::Q5_K:
      if (tok1 - tok0 >= vnni::kLaneTokens) {
        vnni::q45k_lanes<BlockQ5_K>(m, row0, row1, tok0, tok1);
      } else {
        vnni::tiles<vnni::Q5K>(m, row0, row1, tok0, tok1);
      }
      return true;
    case DType::Q8_0:
      vnni::tiles<vnni::Q8_0>(m, row0, row1, tok0, tok1);
      return true;
    case DType::Q4_0:
      vnni::q4_0_lanes(m, row0, row1, tok0, tok1);
      return true;
    default:
      return false;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#undef TORCHLESS_VNNI
#endif  // HWY_TARGET == HWY_AVX3_DL

#endif  // include guard
