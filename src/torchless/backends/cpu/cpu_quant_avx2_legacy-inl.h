// Int8 tiles of the legacy 32-element types Q8_0 and Q4_0 for Highway's AVX2 target (CPUs
// without AVX-512 VNNI): weights stay bytes and meet the int8 activation codes (m.xq8) in
// avx2::dpbusd (vpmaddubsw + vpmaddwd, cpu_avx2_int8-inl.h), 32 multiply-adds per vector pair,
// where the portable kernels widen both sides to int16 first. One 32-element block per vector.
//   Q8_0: signed weights enter as |w| with the activation taking w's sign (w x = |w| sign(w) x;
//         |-128| = 128 is exact as u8, within the bound of dpbusd).
//   Q4_0: nibbles 0..15 enter unsigned; the -8 offset subtracts 8 x the block's activation sum
//         (m.xsum, one per 32) from the block's integer sum.
//
// Batch invariance: the integer sums are exact, and each output's float operations are fixed:
// per block b, in order, acc = fma(float(isum_b lanes), d_w,b * d_x,b, acc) on a vector of 8
// lane accumulators, whose lanes always receive the same partial integer sums; then one
// horizontal sum in a fixed order. No step depends on the tile's shape, so the mat-vec, every
// batch size and position and any split of rows over threads give the same bits.

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
#include <type_traits>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/quant.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace avx2 {

// One weight block as dpbusd operands: unsigned codes, and for Q8_0 the signed weights whose
// signs the activations take.
struct LegacyWeights {
  __m256i codes;
  __m256i signs;
  float d;
};

inline LegacyWeights legacy_weights(const BlockQ8_0& b) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
  return {_mm256_abs_epi8(w), w, _cvtsh_ss(b.d)};
}

// Byte j of qs holds element j in its low nibble and element j + 16 in its high one.
inline LegacyWeights legacy_weights(const BlockQ4_0& b) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
  return {_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_setzero_si256(), _cvtsh_ss(b.d)};
}

// The activation rows of one tile.
template <int NT>
struct LegacyActs {
  const int8_t* q[NT];
  const float* d[NT];
  const int16_t* sums[NT];
};

// out[r * NT + t] = dot(weight row r, activation row t) over `cols` elements.
template <class Block, int NR, int NT>
void legacy_dot(const Block* const* w, const LegacyActs<NT>& x, int64_t cols, float* out) {
  constexpr bool kQ4 = std::is_same_v<Block, BlockQ4_0>;
  __m256 acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  const int64_t blocks = cols / kQK;
  for (int64_t b = 0; b < blocks; ++b) {
    __m256i xv[NT];
    __m256i offset[NT];  // Q4_0: 8 x the block's activation sum, in lane 0
    for (int t = 0; t < NT; ++t) {
      xv[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q[t] + b * kQK));
      if constexpr (kQ4) {
        offset[t] = _mm256_zextsi128_si256(_mm_cvtsi32_si128(8 * int32_t{x.sums[t][b]}));
      }
    }
    for (int r = 0; r < NR; ++r) {
      const LegacyWeights wb = legacy_weights(w[r][b]);
      for (int t = 0; t < NT; ++t) {
        __m256i isum;
        if constexpr (kQ4) {
          isum = _mm256_sub_epi32(dpbusd(_mm256_setzero_si256(), wb.codes, xv[t]), offset[t]);
        } else {
          isum = dpbusd(_mm256_setzero_si256(), wb.codes, _mm256_sign_epi8(xv[t], wb.signs));
        }
        const __m256 scale = _mm256_set1_ps(wb.d * x.d[t][b]);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) out[r * NT + t] = reduce_add_f32(acc[r][t]);
  }
}

template <class Block, int NR, int NT>
void legacy_tile(const MatmulOperands& m, int64_t r0, int64_t t0) {
  const Block* w[NR];
  for (int r = 0; r < NR; ++r) {
    w[r] = reinterpret_cast<const Block*>(m.w + static_cast<size_t>(r0 + r) * m.w_row_bytes);
  }
  const int64_t blocks = m.cols / kQK;
  LegacyActs<NT> x;
  for (int t = 0; t < NT; ++t) {
    x.q[t] = m.xq8 + (t0 + t) * m.cols;
    x.d[t] = m.xd + (t0 + t) * blocks;
    x.sums[t] = m.xsum ? m.xsum + (t0 + t) * blocks : nullptr;
  }
  float out[NR * NT];
  legacy_dot<Block, NR, NT>(w, x, m.cols, out);
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) m.y[(t0 + t) * m.y_stride + r0 + r] = out[r * NT + t];
  }
}

// Register tiles of NR rows x 2 tokens (16 ymm registers: 8 accumulators, the tokens'
// activations, a row's operands and temporaries), then the last token alone.
template <class Block, int NR>
void legacy_row_group(const MatmulOperands& m, int64_t r, int64_t tok0, int64_t tok1) {
  int64_t t = tok0;
  for (; t + 2 <= tok1; t += 2) legacy_tile<Block, NR, 2>(m, r, t);
  if (t < tok1) legacy_tile<Block, NR, 1>(m, r, t);
}

template <class Block>
void legacy_tiles(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0, int64_t tok1) {
  int64_t r = row0;
  for (; r + 4 <= row1; r += 4) legacy_row_group<Block, 4>(m, r, tok0, tok1);
  for (; r < row1; ++r) legacy_row_group<Block, 1>(m, r, tok0, tok1);
}

}  // namespace avx2

// Runs the tile with the int8 kernels and returns true for Q8_0 and Q4_0 weights with int8
// activations; false leaves the tile to the portable kernels.
inline bool Avx2LegacyTile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                           int64_t tok1) {
  if (m.xq8 == nullptr) return false;
  switch (m.wtype) {
    case DType::Q8_0:
      avx2::legacy_tiles<BlockQ8_0>(m, row0, row1, tok0, tok1);
      return true;
    case DType::Q4_0:
      if (m.xsum == nullptr) return false;
      avx2::legacy_tiles<BlockQ4_0>(m, row0, row1, tok0, tok1);
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
