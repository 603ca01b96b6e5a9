// AVX2 int8 tiles for the K types Q4_K, Q5_K and Q6_K, compiled only for Highway's AVX2 target
// (CPUs without AVX-512: there the portable kernels of cpu_quant_dot.cpp widen both sides to
// int16 and decode element by element). Weights are unpacked to unsigned codes (Q4_K nibbles
// 0..15, Q5_K 0..31, Q6_K 0..63) and meet the int8 activation codes in vpdpbusd's two AVX2
// steps (cpu_avx2_int8-inl.h), with the sub-block scale applied in the second one: vpmaddubsw
// gives the int16 sums of adjacent code x activation pairs (at most 2 x 63 x 127, exact), and
// vpmaddwd multiplies those by the integer sub-block scale and adds pairs into int32. Mins go
// through the activation sums per 16 (one vpmaddwd), Q6_K's offset of 32 through the same sums
// times its scales. These tiles decode the blocks in place: the mat-vec of decode and batches of
// fewer than 8 tokens; larger batches unpack the weights once (cpu_quant_avx2_kpack-inl.h).
//
// Float order: every output follows the VNNI dot_tile (cpu_quant_vnni-inl.h) step for step. Per
// block the exact integer sums are reduced to one value each, which meets the float scales in
// acc = fma(float(isum), d d_x, acc), then acc = fma(float(msum), -dmin d_x, acc) for the mins.
// Four weight rows share a tile, each in one lane of a 128-bit float accumulator: every lane
// runs that scalar sequence, so the results are the VNNI kernels' bits, the same for the
// mat-vec, any batch, any tile position and any split of rows over threads.

// Per-target include guard (Highway's -inl.h convention).
#if defined(TORCHLESS_CPU_QUANT_AVX2_K_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TORCHLESS_CPU_QUANT_AVX2_K_INL_H_
#undef TORCHLESS_CPU_QUANT_AVX2_K_INL_H_
#else
#define TORCHLESS_CPU_QUANT_AVX2_K_INL_H_
#endif

#include <hwy/highway.h>

#include "torchless/backends/cpu/cpu_avx2_int8-inl.h"

#if HWY_TARGET == HWY_AVX2
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/quant.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace avx2 {

// Weight rows per tile: the four float lanes of one accumulator per token.
inline constexpr int kKRows = 4;

// Weight blocks fetched ahead of use, per row stream.
// (8 and 16 measured alike in decode on a Zen AVX2 host; 4 ahead within the row only, as the
// VNNI kernel does, was ~2.5x slower.)
inline constexpr int64_t kKPrefetchBlocks = 8;

// Activations of NT tokens at the current block: int8 codes and the sums of each 16 codes.
template <int NT>
struct BlockActs {
  const int8_t* q[NT];
  __m256i sums[NT];  // 16 int16 sums
};

// A vector whose int16 lanes in the low 128 bits all hold lane `lo` of `s` and those in the
// high 128 bits lane `hi`, where s holds the same 8 int16 lanes in both halves.
template <int Lo, int Hi>
inline __m256i pick_pair(__m256i s) {
  constexpr int16_t kLo = static_cast<int16_t>(2 * Lo | (2 * Lo + 1) << 8);
  constexpr int16_t kHi = static_cast<int16_t>(2 * Hi | (2 * Hi + 1) << 8);
  const __m256i ctrl = _mm256_setr_epi16(kLo, kLo, kLo, kLo, kLo, kLo, kLo, kLo, kHi, kHi, kHi, kHi,
                                         kHi, kHi, kHi, kHi);
  return _mm256_shuffle_epi8(s, ctrl);
}

// sum += (codes . x per adjacent pair, int16) x scale, pairs added into int32 lanes.
inline __m256i scaled_dot(__m256i sum, __m256i codes, const int8_t* x, __m256i scale) {
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i pairs = _mm256_maddubs_epi16(codes, xv);
  return _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, scale));
}

// v shifted so that bit `From` of each byte lands on bit 4 (From in 0..7; 16-bit shifts of at
// most 4 keep the bit inside its byte).
template <int From>
inline __m256i bit_to_4(__m256i v) {
  if constexpr (From < 4) {
    return _mm256_slli_epi16(v, 4 - From);
  } else if constexpr (From > 4) {
    return _mm256_srli_epi16(v, From - 4);
  } else {
    return v;
  }
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K block as bytes (sub-blocks 0..3 in the low 6
// bits of scale bytes 0..3 / 4..7, sub-blocks 4..7 in the nibbles of bytes 8..11 plus the top
// 2 bits of bytes 0..3 / 4..7), unpacked four at a time in 32-bit words.
struct ScalesMins {
  __m256i scales;  // 8 int16 scales, in both 128-bit halves
  __m256i mins;    // int16 lane 2s and 2s + 1: the min of sub-block s (one per 16 elements)
};

inline ScalesMins q45k_scales(const uint8_t* packed) {
  uint32_t u[3];
  std::memcpy(u, packed, sizeof(u));
  const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  const uint64_t sc =
      (u[0] & low6) | static_cast<uint64_t>((u[2] & low4) | (((u[0] >> 6) & low2) << 4)) << 32;
  const uint64_t mn =
      (u[1] & low6) | static_cast<uint64_t>(((u[2] >> 4) & low4) | (((u[1] >> 6) & low2) << 4))
                          << 32;
  const __m128i mn8 = _mm_cvtsi64_si128(static_cast<int64_t>(mn));
  ScalesMins s;
  s.scales =
      _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc))));
  s.mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));
  return s;
}

// Q4_K: element 64c + l is the low nibble of qs[32c + l], element 64c + 32 + l its high nibble
// (l < 32); sub-block s (32 elements) has scale s and min s. Q5_K: the same, plus the fifth bit
// of element 32s + l in bit s of qh[l].
template <class BlockT, int MaxCode>
struct Q45K {
  using Block = BlockT;
  static constexpr int kMaxCode = MaxCode;
  static constexpr bool kHasMins = true;
  static constexpr bool kFifthBit = std::is_same_v<BlockT, BlockQ5_K>;

  // The block's fifth bits (Q5_K's qh); nothing for Q4_K.
  static __m256i fifth_bits(const Block& b) {
    if constexpr (kFifthBit) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    } else {
      (void)b;
      return _mm256_setzero_si256();
    }
  }

  // The codes of elements 64C .. 64C + 31 (lo) and 64C + 32 .. 64C + 63 (hi); qh: fifth_bits.
  template <int C>
  static void codes(const Block& b, __m256i qh, __m256i& lo, __m256i& hi) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * C));
    const __m256i mask = _mm256_set1_epi8(0x0F);
    lo = _mm256_and_si256(q, mask);
    hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
    if constexpr (kFifthBit) {
      const __m256i bit4 = _mm256_set1_epi8(0x10);
      lo = _mm256_or_si256(lo, _mm256_and_si256(bit_to_4<2 * C>(qh), bit4));
      hi = _mm256_or_si256(hi, _mm256_and_si256(bit_to_4<2 * C + 1>(qh), bit4));
    } else {
      (void)qh;
    }
  }

  template <int C, int NT>
  static void chunk(const Block& b, __m256i qh, const ScalesMins& s, const BlockActs<NT>& x,
                    __m256i* isum) {
    __m256i lo, hi;
    codes<C>(b, qh, lo, hi);
    const __m256i slo = pick_pair<2 * C, 2 * C>(s.scales);
    const __m256i shi = pick_pair<2 * C + 1, 2 * C + 1>(s.scales);
    for (int t = 0; t < NT; ++t) {
      isum[t] = scaled_dot(isum[t], lo, x.q[t] + 64 * C, slo);
      isum[t] = scaled_dot(isum[t], hi, x.q[t] + 64 * C + 32, shi);
    }
  }

  // isum[t]: int32 lanes summing to the block's scaled code . activation sum of token t;
  // msum[t]: lanes summing to sum over sub-blocks of min x activation sum.
  template <int NT>
  static void block(const Block& b, const BlockActs<NT>& x, __m256i* isum, __m256i* msum) {
    const ScalesMins s = q45k_scales(b.scales);
    const __m256i qh = fifth_bits(b);
    for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
    chunk<0>(b, qh, s, x, isum);
    chunk<1>(b, qh, s, x, isum);
    chunk<2>(b, qh, s, x, isum);
    chunk<3>(b, qh, s, x, isum);
    for (int t = 0; t < NT; ++t) msum[t] = _mm256_madd_epi16(s.mins, x.sums[t]);
  }

  // All 256 codes in element order.
  static void unpack(const Block& b, uint8_t* out) {
    const __m256i qh = fifth_bits(b);
    __m256i c[8];
    codes<0>(b, qh, c[0], c[1]);
    codes<1>(b, qh, c[2], c[3]);
    codes<2>(b, qh, c[4], c[5]);
    codes<3>(b, qh, c[6], c[7]);
    for (int i = 0; i < 8; ++i) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i), c[i]);
  }
  // The 8 sub-block scales and mins.
  static void scales(const Block& b, int16_t* scale, int16_t* min) {
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, mn;
      q4k_scale_min(s, b.scales, sc, mn);
      scale[s] = sc;
      min[s] = mn;
    }
  }
  static uint16_t d(const Block& b) { return b.d; }
  static uint16_t dmin(const Block& b) { return b.dmin; }
};

using Q4K = Q45K<BlockQ4_K, 15>;
using Q5K = Q45K<BlockQ5_K, 31>;

// Q6_K: in half h (128 elements), element 128h + 32k + l (l < 32) has the low 4 bits in
// nibble k / 2 of ql[64h + 32 (k % 2) + l] and the top 2 in bits 2k, 2k + 1 of qh[32h + l];
// its value is code - 32, and sub-block s (16 elements) has the signed scale s.
struct Q6K {
  using Block = BlockQ6_K;
  static constexpr int kMaxCode = 63;
  static constexpr bool kHasMins = false;

  // Chunks 4H .. 4H + 3 (elements 128H .. 128H + 127); `scales` holds the 8 int16 scales of
  // the half in both 128-bit halves.
  // The codes of elements 128H + 32k .. 128H + 32k + 31 in codes[k].
  template <int H>
  static void half_codes(const Block& b, __m256i* codes) {
    const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * H));
    const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * H + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * H));
    const __m256i mask = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    codes[0] = _mm256_or_si256(_mm256_and_si256(ql0, mask),
                               _mm256_and_si256(_mm256_slli_epi16(qh, 4), top));
    codes[1] = _mm256_or_si256(_mm256_and_si256(ql1, mask),
                               _mm256_and_si256(_mm256_slli_epi16(qh, 2), top));
    codes[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), mask),
                               _mm256_and_si256(qh, top));
    codes[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), mask),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), top));
  }

  template <int H, int NT>
  static void half(const Block& b, __m256i scales, const BlockActs<NT>& x, __m256i* isum) {
    __m256i codes[4];
    half_codes<H>(b, codes);
    // The 32 elements of chunk k are sub-blocks 2k (maddubs lanes 0..7) and 2k + 1 (8..15).
    const __m256i sc[4] = {pick_pair<0, 1>(scales), pick_pair<2, 3>(scales),
                           pick_pair<4, 5>(scales), pick_pair<6, 7>(scales)};
    for (int k = 0; k < 4; ++k) {
      for (int t = 0; t < NT; ++t) {
        isum[t] = scaled_dot(isum[t], codes[k], x.q[t] + 128 * H + 32 * k, sc[k]);
      }
    }
  }

  template <int NT>
  static void block(const Block& b, const BlockActs<NT>& x, __m256i* isum, __m256i* msum) {
    (void)msum;
    const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    // The offset: 32 x sum over sub-blocks of scale x activation sum, subtracted exactly.
    const __m256i s16 = _mm256_cvtepi8_epi16(s8);
    for (int t = 0; t < NT; ++t) {
      isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                 _mm256_slli_epi32(_mm256_madd_epi16(s16, x.sums[t]), 5));
    }
    half<0>(b, _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(s8)), x, isum);
    half<1>(b, _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128(s8, 8))), x, isum);
  }
  // The 16 sub-block scales, also the coefficients of the offset of 32.
  static void scales(const Block& b, int16_t* scale, int16_t* offset) {
    for (int s = 0; s < 16; ++s) scale[s] = offset[s] = b.scales[s];
  }
  static void unpack(const Block& b, uint8_t* out) {
    __m256i c[8];
    half_codes<0>(b, c);
    half_codes<1>(b, c + 4);
    for (int i = 0; i < 8; ++i) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i), c[i]);
  }
  static uint16_t d(const Block& b) { return b.d; }
  static uint16_t dmin(const Block& b) {
    (void)b;
    return 0;
  }
};

// Fetches the block kKPrefetchBlocks after `blk` (`skip` bytes further), every cache line of
// it: a row of a 2048-column matrix is only 8 blocks long, so the stream a tile reads is short
// and the hardware prefetchers alone left the kernel waiting on memory.
template <class Block>
inline void prefetch_ahead(const Block* blk, size_t skip) {
  const char* p = reinterpret_cast<const char*>(blk + kKPrefetchBlocks) + skip;
  for (size_t o = 0; o < sizeof(Block); o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

// The sums of the lanes of a0..a3 (lanes 0..3) and of b0..b3 (lanes 4..7), exact.
inline __m256i reduce_rows8(const __m256i* a, const __m256i* b) {
  const __m256i ha =
      _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i hb =
      _mm256_hadd_epi32(_mm256_hadd_epi32(b[0], b[1]), _mm256_hadd_epi32(b[2], b[3]));
  // ha: row j's low-half sum in lane j, its high-half sum in lane 4 + j; likewise hb.
  return _mm256_add_epi32(_mm256_permute2x128_si256(ha, hb, 0x20),
                          _mm256_permute2x128_si256(ha, hb, 0x31));
}

// The sums of the lanes of a0..a3, exact.
inline __m128i reduce_rows4(const __m256i* a) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// y for rows r0 .. r0 + count - 1 (count <= 4) and tokens t0 .. t0 + NT - 1. Missing rows
// repeat the last one: their lanes are computed and never stored.
template <class Kind, int NT>
void k_tile(const MatmulOperands& m, int64_t r0, int count, int64_t t0) {
  using Block = typename Kind::Block;
  const int64_t blocks = m.cols / kQK_K;
  const Block* row[kKRows];
  for (int j = 0; j < kKRows; ++j) {
    const int64_t r = r0 + std::min(j, count - 1);
    row[j] = reinterpret_cast<const Block*>(m.w + static_cast<size_t>(r) * m.w_row_bytes);
  }
  const int8_t* xq[NT];
  const float* xd[NT];
  const int16_t* xs[NT];
  __m128 acc[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = m.xq8 + (t0 + t) * m.cols;
    xd[t] = m.xd + (t0 + t) * blocks;
    xs[t] = m.xsum + (t0 + t) * (m.cols / 16);
    acc[t] = _mm_setzero_ps();
  }
  const __m128 sign = _mm_set1_ps(-0.0f);
  // Past the end of its row, a row's prefetch stream goes on in the row kKRows further down,
  // the one the next tile reads at that position.
  const size_t pf_skip = (kKRows - 1) * m.w_row_bytes;
  for (int64_t b = 0; b < blocks; ++b) {
    BlockActs<NT> x;
    for (int t = 0; t < NT; ++t) {
      x.q[t] = xq[t] + b * kQK_K;
      x.sums[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[t] + b * 16));
    }
    __m256i isum[NT][kKRows], msum[NT][kKRows];
    alignas(8) uint16_t d[kKRows], dmin[kKRows];
    for (int j = 0; j < kKRows; ++j) {
      prefetch_ahead(row[j] + b, b + kKPrefetchBlocks >= blocks ? pf_skip : 0);
      const Block& blk = row[j][b];
      __m256i is[NT], ms[NT];
      Kind::template block<NT>(blk, x, is, ms);
      for (int t = 0; t < NT; ++t) {
        isum[t][j] = is[t];
        msum[t][j] = ms[t];
      }
      d[j] = Kind::d(blk);
      dmin[j] = Kind::dmin(blk);
    }
    const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d)));
    const __m128 mw =
        _mm_xor_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(dmin))), sign);
    for (int t = 0; t < NT; ++t) {
      const __m128 dx = _mm_set1_ps(xd[t][b]);
      if constexpr (Kind::kHasMins) {
        const __m256 sums = _mm256_cvtepi32_ps(reduce_rows8(isum[t], msum[t]));
        acc[t] = _mm_fmadd_ps(_mm256_castps256_ps128(sums), _mm_mul_ps(dw, dx), acc[t]);
        acc[t] = _mm_fmadd_ps(_mm256_extractf128_ps(sums, 1), _mm_mul_ps(mw, dx), acc[t]);
      } else {
        const __m128 sums = _mm_cvtepi32_ps(reduce_rows4(isum[t]));
        acc[t] = _mm_fmadd_ps(sums, _mm_mul_ps(dw, dx), acc[t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) {
    alignas(16) float out[kKRows];
    _mm_store_ps(out, acc[t]);
    float* y = m.y + (t0 + t) * m.y_stride + r0;
    for (int j = 0; j < count; ++j) y[j] = out[j];
  }
}

// Rows in groups of 4, tokens 4 at a time and then the remaining 1 to 3.
template <class Kind>
void k_tiles(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0, int64_t tok1) {
  for (int64_t r = row0; r < row1; r += kKRows) {
    const int count = static_cast<int>(std::min<int64_t>(kKRows, row1 - r));
    int64_t t = tok0;
    for (; t + 4 <= tok1; t += 4) k_tile<Kind, 4>(m, r, count, t);
    switch (tok1 - t) {
      case 3:
        k_tile<Kind, 3>(m, r, count, t);
        break;
      case 2:
        k_tile<Kind, 2>(m, r, count, t);
        break;
      case 1:
        k_tile<Kind, 1>(m, r, count, t);
        break;
      default:
        break;
    }
  }
}

}  // namespace avx2

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#endif  // HWY_TARGET == HWY_AVX2

#endif  // include guard
