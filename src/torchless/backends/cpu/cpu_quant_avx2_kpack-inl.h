// AVX2 batches (prompt processing) of the K types Q4_K, Q5_K and Q6_K over weights unpacked
// per tile into 8 rows in the lanes of a vector: compiled only for Highway's AVX2 target.
//
// Why: the tiles of cpu_quant_avx2_k-inl.h decode every weight block again for each group of 4
// tokens and reduce 8 int32 lanes per row, token and block; on a 64-token prompt that decoding
// and those reductions, not the multiply-adds, bound them. Here a group of 8 rows is unpacked
// once per call into unsigned codes grouped by 4 elements (the 4 codes of each row side by side
// in one 32-byte vector, as the VNNI kernels' rows-in-lanes layout), with each sub-block's
// integer scales and offsets laid out per row in int16 pairs. Every token then meets the 8 rows
// in vpmaddubsw (codes x the broadcast 4 activation codes, pair sums in int16) and vpmaddwd
// (by the rows' sub-block scales, into one int32 lane per row): no decoding and no horizontal
// sums in the token loop.
//
// Float order: the integer sums per row, token and block are exact, so they equal those of the
// other tiles; they meet the float scales in the same acc = fma(isum, d d_x, acc), then
// acc = fma(msum, -dmin d_x, acc), so the results are the mat-vec's bits (CpuBatchInvariance).

// Per-target include guard (Highway's -inl.h convention).
#if defined(TORCHLESS_CPU_QUANT_AVX2_KPACK_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TORCHLESS_CPU_QUANT_AVX2_KPACK_INL_H_
#undef TORCHLESS_CPU_QUANT_AVX2_KPACK_INL_H_
#else
#define TORCHLESS_CPU_QUANT_AVX2_KPACK_INL_H_
#endif

#include <hwy/highway.h>

#include "torchless/backends/cpu/cpu_quant_avx2_k-inl.h"

#if HWY_TARGET == HWY_AVX2
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/quant.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace avx2 {

// Weight rows in the int32 lanes of a vector.
inline constexpr int kPackRows = 8;
// Tokens per register tile: one int32 accumulator and one float accumulator each.
inline constexpr int kPackTokens = 4;
// Batches of at least this many tokens take the packed path; fewer decode in place.
inline constexpr int64_t kPackMinTokens = 8;

// One block (256 columns) of 8 weight rows.
struct alignas(32) PackedK {
  // Group g: the codes of elements 4g .. 4g + 3, row j in bytes 4j .. 4j + 3.
  uint8_t codes[kQK_K / 4][32];
  // Per sub-block (Q4_K/Q5_K: 8 of 32 elements; Q6_K: 16 of 16): row j's scale in int16
  // lanes 2j and 2j + 1.
  int16_t scales[16][16];
  // Per pair p of sub-blocks: row j's offset coefficients of sub-blocks 2p and 2p + 1 in lanes
  // 2j and 2j + 1 (Q4_K/Q5_K: the mins; Q6_K: the scales, for its offset of 32).
  int16_t offsets[8][16];
  float d[kPackRows];
  float mneg[kPackRows];  // -dmin
};

// Sub-blocks per block: 8 of 32 elements, or Q6_K's 16 of 16.
template <class Kind>
inline constexpr int kSubBlocks = Kind::kHasMins ? 8 : 16;

// 4-element groups whose vpmaddubsw pair sums add up exactly in int16 before they meet the
// scale: each sum covers 2 codes x activations of at most kMaxCode x 128 per group, so
// kInt16Groups x 2 x kMaxCode x 128 <= 32767 (Q4_K 8 groups, a whole sub-block; Q5_K 4; Q6_K 2).
// That leaves one vpmaddwd per run instead of one per group.
template <class Kind>
inline constexpr int kInt16Groups = 32767 / (2 * Kind::kMaxCode * 128);

// An 8 x 8 transpose of 32-bit words: out[i] word j = in[j] word i.
inline void transpose8x32(const __m256i* in, __m256i* out) {
  __m256i a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = _mm256_unpacklo_epi32(in[i], in[i + 1]);
    a[i + 1] = _mm256_unpackhi_epi32(in[i], in[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    b[i] = _mm256_unpacklo_epi64(a[i], a[i + 2]);
    b[i + 1] = _mm256_unpackhi_epi64(a[i], a[i + 2]);
    b[i + 2] = _mm256_unpacklo_epi64(a[i + 1], a[i + 3]);
    b[i + 3] = _mm256_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    out[i] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x20);
    out[i + 4] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x31);
  }
}

// Block b of rows r0 .. r0 + 7 (rows past `count` repeat the last one) into p.
template <class Kind>
void pack_k_block(const MatmulOperands& m, int64_t r0, int count, int64_t b, PackedK& p) {
  using Block = typename Kind::Block;
  alignas(32) uint8_t codes[kPackRows][kQK_K];
  alignas(32) uint16_t d[kPackRows], dmin[kPackRows];
  int16_t scales[kPackRows][16], offsets[kPackRows][16];
  for (int j = 0; j < kPackRows; ++j) {
    const int64_t r = r0 + std::min(j, count - 1);
    const Block& blk =
        reinterpret_cast<const Block*>(m.w + static_cast<size_t>(r) * m.w_row_bytes)[b];
    Kind::unpack(blk, codes[j]);
    Kind::scales(blk, scales[j], offsets[j]);
    d[j] = Kind::d(blk);
    dmin[j] = Kind::dmin(blk);
  }
  // Groups 8k .. 8k + 7 of the 8 rows are one 8 x 8 transpose of words.
  for (int k = 0; k < kQK_K / 32; ++k) {
    __m256i in[8], out[8];
    for (int j = 0; j < 8; ++j) {
      in[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes[j] + 32 * k));
    }
    transpose8x32(in, out);
    for (int i = 0; i < 8; ++i) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(p.codes[8 * k + i]), out[i]);
    }
  }
  for (int s = 0; s < kSubBlocks<Kind>; ++s) {
    for (int j = 0; j < kPackRows; ++j) p.scales[s][2 * j] = p.scales[s][2 * j + 1] = scales[j][s];
  }
  for (int q = 0; q < kSubBlocks<Kind> / 2; ++q) {
    for (int j = 0; j < kPackRows; ++j) {
      p.offsets[q][2 * j] = offsets[j][2 * q];
      p.offsets[q][2 * j + 1] = offsets[j][2 * q + 1];
    }
  }
  _mm256_store_ps(p.d, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d))));
  const __m256 dm = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dmin)));
  _mm256_store_ps(p.mneg, _mm256_xor_ps(dm, _mm256_set1_ps(-0.0f)));
}

// The activation sums per offset sub-block of token t's block b, as int16 in `out`
// (Q4_K/Q5_K: 8 sums of 32 codes; Q6_K: the 16 sums of 16).
template <class Kind>
inline void offset_sums(const int16_t* xs16, int16_t* out) {
  if constexpr (Kind::kHasMins) {
    for (int s = 0; s < 8; ++s) {
      out[s] = static_cast<int16_t>(xs16[2 * s] + xs16[2 * s + 1]);  // |sum| <= 32 x 128
    }
  } else {
    std::memcpy(out, xs16, 16 * sizeof(int16_t));
  }
}

// y for the 8 packed rows (the first `count` stored) and tokens t0 .. t0 + NT - 1.
template <class Kind, int NT>
void packed_k_tile(const MatmulOperands& m, const PackedK* packed, int64_t r0, int count,
                   int64_t t0) {
  constexpr int kSub = kSubBlocks<Kind>;
  constexpr int kGroups = kQK_K / 4 / kSub;  // 4-element groups per sub-block
  constexpr int kRun = std::min(kGroups, kInt16Groups<Kind>);
  const int64_t blocks = m.cols / kQK_K;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const PackedK& p = packed[b];
    __m256i isum[NT];
    for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
    for (int s = 0; s < kSub; ++s) {
      const __m256i scale = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.scales[s]));
      for (int g0 = kGroups * s; g0 < kGroups * (s + 1); g0 += kRun) {
        __m256i part[NT];  // int16 pair sums of kRun groups, exact (see kInt16Groups)
        for (int i = 0; i < kRun; ++i) {
          const __m256i codes =
              _mm256_load_si256(reinterpret_cast<const __m256i*>(p.codes[g0 + i]));
          for (int t = 0; t < NT; ++t) {
            const int8_t* x = m.xq8 + (t0 + t) * m.cols + b * kQK_K + 4 * (g0 + i);
            const __m256i pairs = _mm256_maddubs_epi16(codes, broadcast32(x));
            part[t] = i == 0 ? pairs : _mm256_add_epi16(part[t], pairs);
          }
        }
        for (int t = 0; t < NT; ++t) {
          isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(part[t], scale));
        }
      }
    }
    const __m256 d = _mm256_load_ps(p.d);
    for (int t = 0; t < NT; ++t) {
      alignas(32) int16_t sums[16];
      offset_sums<Kind>(m.xsum + (t0 + t) * (m.cols / 16) + b * 16, sums);
      __m256i off = _mm256_setzero_si256();
      for (int q = 0; q < kSub / 2; ++q) {
        const __m256i coef = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.offsets[q]));
        off = _mm256_add_epi32(off, _mm256_madd_epi16(coef, broadcast32(sums + 2 * q)));
      }
      const __m256 dx = _mm256_set1_ps(m.xd[(t0 + t) * blocks + b]);
      if constexpr (Kind::kHasMins) {
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, dx), acc[t]);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(off), _mm256_mul_ps(_mm256_load_ps(p.mneg), dx),
                                 acc[t]);
      } else {
        const __m256i total = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(off, 5));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_mul_ps(d, dx), acc[t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) {
    float* y = m.y + (t0 + t) * m.y_stride + r0;
    if (count == kPackRows) {
      _mm256_storeu_ps(y, acc[t]);
    } else {
      alignas(32) float out[kPackRows];
      _mm256_store_ps(out, acc[t]);
      std::copy(out, out + count, y);
    }
  }
}

// Every cache line of rows r .. r + count - 1, into L2: the weights of the next group arrive
// while this one meets the tokens. (The pack waited on them: rows of a 2048-column matrix are
// only 8 blocks long, too short a stream for the hardware prefetchers.)
inline void prefetch_rows(const MatmulOperands& m, int64_t r, int64_t count) {
  const char* p = reinterpret_cast<const char*>(m.w + static_cast<size_t>(r) * m.w_row_bytes);
  const size_t bytes = static_cast<size_t>(count) * m.w_row_bytes;
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T1);
}

// Rows in groups of 8, each packed once and met by the tokens kPackTokens at a time, then the
// remaining 1 to kPackTokens - 1.
template <class Kind>
void packed_k_tiles(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                    int64_t tok1) {
  const int64_t blocks = m.cols / kQK_K;
  thread_local std::vector<PackedK> packed;
  if (packed.size() < static_cast<size_t>(blocks)) packed.resize(static_cast<size_t>(blocks));
  for (int64_t r = row0; r < row1; r += kPackRows) {
    const int count = static_cast<int>(std::min<int64_t>(kPackRows, row1 - r));
    for (int64_t b = 0; b < blocks; ++b) {
      pack_k_block<Kind>(m, r, count, b, packed[static_cast<size_t>(b)]);
    }
    if (r + kPackRows < row1) {
      prefetch_rows(m, r + kPackRows, std::min<int64_t>(kPackRows, row1 - r - kPackRows));
    }
    int64_t t = tok0;
    for (; t + kPackTokens <= tok1; t += kPackTokens) {
      packed_k_tile<Kind, kPackTokens>(m, packed.data(), r, count, t);
    }
    switch (tok1 - t) {
      case 3:
        packed_k_tile<Kind, 3>(m, packed.data(), r, count, t);
        break;
      case 2:
        packed_k_tile<Kind, 2>(m, packed.data(), r, count, t);
        break;
      case 1:
        packed_k_tile<Kind, 1>(m, packed.data(), r, count, t);
        break;
      default:
        break;
    }
  }
}

template <class Kind>
void k_tiles_any(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0, int64_t tok1) {
  if (tok1 - tok0 >= kPackMinTokens) return packed_k_tiles<Kind>(m, row0, row1, tok0, tok1);
  k_tiles<Kind>(m, row0, row1, tok0, tok1);
}

}  // namespace avx2

// Runs the tile with the AVX2 int8 kernels and returns true where the type has one and the
// int8 activations are there; false leaves the tile to the portable kernels.
inline bool Avx2KMatmulTile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                            int64_t tok1) {
  if (m.xq8 == nullptr || m.xsum == nullptr || m.w_repacked) return false;
  switch (m.wtype) {
    case DType::Q4_K:
      avx2::k_tiles_any<avx2::Q4K>(m, row0, row1, tok0, tok1);
      return true;
    case DType::Q5_K:
      avx2::k_tiles_any<avx2::Q5K>(m, row0, row1, tok0, tok1);
      return true;
    case DType::Q6_K:
      avx2::k_tiles_any<avx2::Q6K>(m, row0, row1, tok0, tok1);
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
