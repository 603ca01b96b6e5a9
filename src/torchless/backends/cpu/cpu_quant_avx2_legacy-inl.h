// Int8 kernel of Q4_0 weights for Highway's AVX2 target (CPUs without AVX-512 VNNI): nibbles
// stay bytes (codes 0..15) and meet the int8 activation codes (m.xq8) in vpmaddubsw, where the
// portable kernel (cpu_matmul_kernels.cpp) widens both sides to int16 first; the -8 offset
// subtracts 8 x the block's activation sum (m.xsum, one per 32) from the block's integer sum.
// Eight weight rows share each vector (rows in lanes, below), so the float work per block and
// token is one conversion, one multiply and one FMA for 8 outputs.
//
// Q8_0 keeps the portable int16 kernel on AVX2: an int8 tile (|w| unsigned, the activation
// taking w's sign, one block per vector) measured no faster for the mat-vec, which is bound by
// memory, and slower in batches (per block and output it needs vpsignb, vpmaddubsw and
// vpmaddwd where the int16 kernel needs two vpmaddwd).

// Per-target include guard (Highway's -inl.h convention).
#if defined(TORCHLESS_CPU_QUANT_AVX2_LEGACY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TORCHLESS_CPU_QUANT_AVX2_LEGACY_INL_H_
#undef TORCHLESS_CPU_QUANT_AVX2_LEGACY_INL_H_
#else
#define TORCHLESS_CPU_QUANT_AVX2_LEGACY_INL_H_
#endif

#include <hwy/highway.h>

#include "torchless/backends/cpu/cpu_avx2_int8-inl.h"

#if HWY_TARGET == HWY_AVX2
#include <immintrin.h>

#include <cstdint>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/quant.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace avx2 {

// --- Q4_0 with rows in lanes -----------------------------------------------------------------
// Eight weight rows share every vector: int32 lane j belongs to row j. A block of 8 rows is 8
// vectors of codes, vector i holding the 4 codes of elements 4i .. 4i + 3 (i < 4: low nibbles
// of qs word i; i >= 4: high nibbles of word i - 4, elements 16 + ..) of each row, which meet
// a token's 4-byte activation group i broadcast to every lane. vpmaddubsw's int16 pair sums
// of the 8 vectors add exactly in int16 (16 products of at most 15 x 127: 30480 < 32767), so
// one vpmaddwd per block and token gives the 8 rows' integer sums, and one conversion, one
// multiply and one FMA serve 8 outputs. Each output's float steps, block by block in order:
// acc = fma(float(isum_b - 8 xsum_b), d_w,b * d_x,b, acc), in its own lane, never reduced with
// another's; every Q4_0 tile takes this path, so all of them give the same bits.

inline constexpr int kLaneRows = 8;

struct Q4_0Lanes {
  __m256i codes[8];
  __m256 d;
};

// The row pointers of a group of `count` rows from `first` (the missing rows repeat the last
// one: their lanes are computed and never stored).
struct LaneRows {
  const BlockQ4_0* row[kLaneRows];
};

inline LaneRows lane_rows(const MatmulOperands& m, int64_t first, int count) {
  LaneRows g;
  for (int j = 0; j < kLaneRows; ++j) {
    const int64_t r = first + (j < count ? j : count - 1);
    g.row[j] = reinterpret_cast<const BlockQ4_0*>(m.w + static_cast<size_t>(r) * m.w_row_bytes);
  }
  return g;
}

inline __m128i load_qs(const BlockQ4_0& b) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
}

// Block b of a row group, rows in lanes: rows k and k + 4 in the halves of a[k], then a 4 x 4
// transpose of 32-bit words within each half.
inline void load_lanes(const LaneRows& g, int64_t b, Q4_0Lanes& out) {
  __m256i a[4];
  for (int k = 0; k < 4; ++k) {
    a[k] = _mm256_inserti128_si256(_mm256_castsi128_si256(load_qs(g.row[k][b])),
                                   load_qs(g.row[k + 4][b]), 1);
  }
  const __m256i t0 = _mm256_unpacklo_epi32(a[0], a[1]);  // words 0, 1 of rows 0, 1
  const __m256i t1 = _mm256_unpackhi_epi32(a[0], a[1]);  // words 2, 3
  const __m256i t2 = _mm256_unpacklo_epi32(a[2], a[3]);
  const __m256i t3 = _mm256_unpackhi_epi32(a[2], a[3]);
  const __m256i words[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                            _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (int i = 0; i < 4; ++i) {
    out.codes[i] = _mm256_and_si256(words[i], mask);
    out.codes[4 + i] = _mm256_and_si256(_mm256_srli_epi32(words[i], 4), mask);
  }
  const __m128i d =
      _mm_setr_epi16(static_cast<int16_t>(g.row[0][b].d), static_cast<int16_t>(g.row[1][b].d),
                     static_cast<int16_t>(g.row[2][b].d), static_cast<int16_t>(g.row[3][b].d),
                     static_cast<int16_t>(g.row[4][b].d), static_cast<int16_t>(g.row[5][b].d),
                     static_cast<int16_t>(g.row[6][b].d), static_cast<int16_t>(g.row[7][b].d));
  out.d = _mm256_cvtph_ps(d);
}

// acc + the products of block b (rows in lanes) with one token: the only float operations an
// output sees.
inline __m256 lanes_step(const Q4_0Lanes& w, const int8_t* xq, float dx, int16_t xsum, __m256 acc) {
  __m256i pairs = _mm256_maddubs_epi16(w.codes[0], broadcast32(xq));
  for (int i = 1; i < 8; ++i) {
    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w.codes[i], broadcast32(xq + 4 * i)));
  }
  // Codes are stored + 8: subtract 8 x (the block's activation sum).
  const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)),
                                        _mm256_set1_epi32(8 * int32_t{xsum}));
  const __m256 scale = _mm256_mul_ps(w.d, _mm256_set1_ps(dx));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc);
}

inline void store_lanes(const MatmulOperands& m, int64_t t, int64_t first, int count, __m256 acc) {
  float* y = m.y + t * m.y_stride + first;
  if (count == kLaneRows) return _mm256_storeu_ps(y, acc);
  alignas(32) float v[kLaneRows];
  _mm256_store_ps(v, acc);
  for (int j = 0; j < count; ++j) y[j] = v[j];
}

// NT tokens from t0 against one row group, weights rearranged block by block.
template <int NT>
void q4_0_lanes_tile(const MatmulOperands& m, const LaneRows& g, int64_t first, int count,
                     int64_t t0) {
  const int64_t blocks = m.cols / kQK;
  const int8_t* xq[NT];
  const float* xd[NT];
  const int16_t* xs[NT];
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = m.xq8 + (t0 + t) * m.cols;
    xd[t] = m.xd + (t0 + t) * blocks;
    xs[t] = m.xsum + (t0 + t) * blocks;
    acc[t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    Q4_0Lanes w;
    load_lanes(g, b, w);
    for (int t = 0; t < NT; ++t)
      acc[t] = lanes_step(w, xq[t] + b * kQK, xd[t][b], xs[t][b], acc[t]);
  }
  for (int t = 0; t < NT; ++t) store_lanes(m, t0 + t, first, count, acc[t]);
}

inline constexpr int kLaneTokens = 4;

template <int NT = kLaneTokens - 1>
void q4_0_lanes_tail(const MatmulOperands& m, const LaneRows& g, int64_t first, int count,
                     int64_t t0, int64_t left) {
  if constexpr (NT >= 1) {
    if (left == NT) return q4_0_lanes_tile<NT>(m, g, first, count, t0);
    q4_0_lanes_tail<NT - 1>(m, g, first, count, t0, left);
  }
}

// Rows in groups of 8 from row0, tokens kLaneTokens at a time.
inline void q4_0_lanes(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                       int64_t tok1) {
  for (int64_t first = row0; first < row1; first += kLaneRows) {
    const int count = static_cast<int>(row1 - first < kLaneRows ? row1 - first : kLaneRows);
    const LaneRows g = lane_rows(m, first, count);
    int64_t t = tok0;
    for (; t + kLaneTokens <= tok1; t += kLaneTokens)
      q4_0_lanes_tile<kLaneTokens>(m, g, first, count, t);
    q4_0_lanes_tail(m, g, first, count, t, tok1 - t);
  }
}

}  // namespace avx2

// Runs the tile with the int8 kernel and returns true for Q4_0 weights with int8 activations
// and block sums; false leaves the tile to the portable kernels.
inline bool Avx2LegacyTile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                           int64_t tok1) {
  if (m.xq8 == nullptr) return false;
  switch (m.wtype) {
    case DType::Q4_0:
      if (m.xsum == nullptr) return false;
      avx2::q4_0_lanes(m, row0, row1, tok0, tok1);
      return true;
    default:
      return false;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#endif  // HWY_TARGET == HWY_AVX2

#endif  // include guard
