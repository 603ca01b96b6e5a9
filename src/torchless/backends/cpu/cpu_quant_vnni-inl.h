// VNNI tiles for the hot K types (Q4_K, Q6_K), compiled only for Highway's AVX3_DL target:
// `vpdpbusd` multiplies 64 unsigned weight bytes by 64 signed activation bytes and adds each
// group of four products into an int32 lane, 64 multiply-adds per instruction with no widening
// (the portable path of cpu_quant_dot.cpp widens both sides to int16 first). Weights are
// unpacked to their unsigned codes (Q4_K nibbles 0..15, Q6_K 6-bit 0..63); Q6_K's -32 offset is
// applied as 32 * the activation sum of each 4-byte group, and Q4_K's mins through the
// activation sums per 16, as in the portable path. Every integer sum is exact, so results match
// the int16 path up to the order of float additions.
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

#include <cstring>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/quant.h"

#define TORCHLESS_VNNI __attribute__((target("avx512vnni")))

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
  int32_t mins[8];
};

struct Q4K {
  using Block = BlockQ4_K;
  static constexpr bool kHasMins = true;
  TORCHLESS_VNNI static void header(const Block& b, Header& h) {
    h.d = half_bits_to_float(b.d);
    h.m = -half_bits_to_float(b.dmin);
    alignas(64) int32_t sc[16] = {};
    for (int s = 0; s < 8; ++s) {
      uint8_t scale, min;
      q4k_scale_min(s, b.scales, scale, min);
      sc[s] = scale;
      h.mins[s] = min;
    }
    const __m512i all = _mm512_load_si512(sc);
    for (int c = 0; c < 4; ++c) h.scales[c] = spread_scales(all, 2 * c, 8);
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

struct Q6K {
  using Block = BlockQ6_K;
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

// Activation rows of one tile: int8 codes, scales and sums of NT tokens.
template <int NT>
struct Rows {
  const int8_t* q[NT];
  const float* d[NT];
  const int16_t* sums[NT];
};

// sum over the 8 sub-blocks of mins[s] * (sums[2s] + sums[2s + 1]).
inline float min_sum(const Header& h, const int16_t* sums) {
  int32_t total = 0;
  for (int s = 0; s < 8; ++s) total += h.mins[s] * (sums[2 * s] + sums[2 * s + 1]);
  return static_cast<float>(total);
}

// out[r * NT + t] = dot(weight row r, activation row t) over `cols` elements.
template <class Kind, int NR, int NT>
TORCHLESS_VNNI void dot_tile(const std::byte* const* w, const Rows<NT>& x, int64_t cols,
                             float* out) {
  using Block = typename Kind::Block;
  __m512 acc[NR][NT];
  float offset[NR][NT] = {};
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(Kind::kOffset));
  for (int64_t b = 0; b < cols / kQK_K; ++b) {
    for (int r = 0; r < NR; ++r) {
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
        acc[r][t] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), _mm512_set1_ps(h.d * dx), acc[r][t]);
        if constexpr (Kind::kHasMins) {
          offset[r][t] += h.m * dx * min_sum(h, x.sums[t] + b * 16);
        }
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) out[r * NT + t] = _mm512_reduce_add_ps(acc[r][t]) + offset[r][t];
  }
}

template <class Kind, int NR, int NT>
TORCHLESS_VNNI void tile(const MatmulOperands& m, int64_t r0, int64_t t0) {
  const std::byte* w[NR];
  for (int r = 0; r < NR; ++r) w[r] = m.w + static_cast<size_t>(r0 + r) * m.w_row_bytes;
  Rows<NT> x;
  for (int t = 0; t < NT; ++t) {
    x.q[t] = m.xq8 + (t0 + t) * m.cols;
    x.d[t] = m.xd + (t0 + t) * (m.cols / kQK_K);
    x.sums[t] = m.xsum ? m.xsum + (t0 + t) * (m.cols / 16) : nullptr;
  }
  float out[NR * NT];
  dot_tile<Kind, NR, NT>(w, x, m.cols, out);
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
  switch (m.wtype) {
    case DType::Q4_K:
      vnni::tiles<vnni::Q4K>(m, row0, row1, tok0, tok1);
      return true;
    case DType::Q6_K:
      vnni::tiles<vnni::Q6K>(m, row0, row1, tok0, tok1);
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
