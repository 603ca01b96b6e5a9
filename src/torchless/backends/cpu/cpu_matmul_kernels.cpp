// Dot products of weight rows with activation rows, per weight dtype, compiled for every
// instruction set Highway targets. Quantised weights are never expanded to F32: Q8_0/Q4_0
// blocks are widened to int16 and multiplied-added with the int16 Q8 activations in integer
// arithmetic (one block scale product per 32 elements), as llama.cpp's vec_dot_q8_0_q8_0 does.

// AVX3_DL carries the VNNI Q8_0/Q4_0 kernels of cpu_quant_vnni-inl.h, AVX2 the int8 Q4_0 one
// of cpu_quant_avx2_legacy-inl.h.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
// Arrays of vectors need sized vector types, which SVE and RVV do not have.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "torchless/backends/cpu/cpu_matmul_kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/backends/cpu/cpu_quant_avx2_legacy-inl.h"
#include "torchless/backends/cpu/cpu_quant_dot.h"
#include "torchless/backends/cpu/cpu_quant_vnni-inl.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most one 32-element block per int16 vector keeps the block loops simple on AVX-512.
using D16 = hn::CappedTag<int16_t, kQ8Block>;
using D32 = hn::Repartition<int32_t, D16>;
using DF32 = hn::Repartition<float, D16>;
using DF = hn::ScalableTag<float>;

template <class D, class V>
float sum_lanes(D d, V v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}

// Every kernel computes an NR x NT tile of outputs (NR weight rows, NT tokens): each weight
// vector is loaded once for NT tokens and each activation vector once for NR rows, which cuts
// the cache traffic of a batched matmul by NR and NT. out[r * NT + t].

// Batch invariance: each output has exactly one accumulator, fed in the order of k whatever the
// tile's shape, so a token's outputs are bit-identical in a mat-vec and in any batch. The
// latency of the FMA chains is hidden by the NR x NT independent outputs of a tile (the
// mat-vec runs row groups too, instead of unrolling one row over several accumulators).

// Float weights: `load(d, row, i)` converts the weights of `row` from element i to F32 lanes.
template <int NR, int NT, class Load>
void dot_float(const Load& load, const std::byte* const* w, const float* const* x, int64_t cols,
               float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  hn::Vec<DF> acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = hn::Zero(df);
  }
  int64_t i = 0;
  for (; i + lanes <= cols; i += lanes) {
    hn::Vec<DF> wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = load(df, w[r], i);
    for (int t = 0; t < NT; ++t) {
      const auto xv = hn::LoadU(df, x[t] + i);
      for (int r = 0; r < NR; ++r) acc[r][t] = hn::MulAdd(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) out[r * NT + t] = sum_lanes(df, acc[r][t]);
  }
  const hn::CappedTag<float, 1> d1;
  for (; i < cols; ++i) {
    for (int r = 0; r < NR; ++r) {
      const float wi = hn::GetLane(load(d1, w[r], i));
      // An explicit FMA: the compiler must not contract (or not) differently per tile shape.
      for (int t = 0; t < NT; ++t) out[r * NT + t] = std::fma(wi, x[t][i], out[r * NT + t]);
    }
  }
}

struct LoadF32 {
  template <class D>
  auto operator()(D d, const std::byte* row, int64_t i) const {
    return hn::LoadU(d, reinterpret_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  template <class D>
  auto operator()(D d, const std::byte* row, int64_t i) const {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + i));
  }
};
struct LoadBF16 {
  template <class D>
  auto operator()(D d, const std::byte* row, int64_t i) const {
    const hn::Rebind<hwy::bfloat16_t, D> db;
    return hn::PromoteTo(d, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(row) + i));
  }
};

// One F16 block scale to F32: a single vcvtph2ps where the target has F16C, instead of the
// branchy portable conversion that would cost as much as the block's dot product.
inline float half_to_float(uint16_t bits) {
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  const hn::Rebind<uint16_t, decltype(d1)> du1;
  return hn::GetLane(hn::PromoteTo(d1, hn::BitCast(dh1, hn::Set(du1, bits))));
}

// Adds the products of int16 weights wv (elements offset.. of a row) with NT token rows.
template <int NT>
void madd_tokens(hn::Vec<D16> wv, const int16_t* const* xq, int64_t offset, hn::Vec<D32>* sums) {
  const D16 d16;
  const D32 d32;
  for (int t = 0; t < NT; ++t) {
    auto odd = hn::Zero(d32);
    const auto prod =
        hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, xq[t] + offset), hn::Zero(d32), odd);
    sums[t] = hn::Add(sums[t], hn::RearrangeToOddPlusEven(prod, odd));
  }
}

// Q8_0 block: 32 int8 weights.
struct Q8_0Block {
  using Block = BlockQ8_0;
  template <int NT>
  static void dot(const Block& block, const int16_t* const* xq, int64_t base, hn::Vec<D32>* sums) {
    const D16 d16;
    const hn::Rebind<int8_t, D16> d8;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d16));
    for (int64_t j = 0; j < kQ8Block; j += lanes) {
      madd_tokens<NT>(hn::PromoteTo(d16, hn::LoadU(d8, block.qs + j)), xq, base + j, sums);
    }
  }
};

// Q4_0 block: byte j holds element j in its low nibble and element j + 16 in its high one.
struct Q4_0Block {
  using Block = BlockQ4_0;
  template <int NT>
  static void dot(const Block& block, const int16_t* const* xq, int64_t base, hn::Vec<D32>* sums) {
    const D16 d16;
    const hn::Rebind<uint16_t, D16> du16;
    const hn::Rebind<uint8_t, D16> du8;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d16));
    const auto mask = hn::Set(du8, uint8_t{0x0F});
    const auto eight = hn::Set(d16, int16_t{8});
    auto widen = [&](auto bytes) {
      return hn::Sub(hn::BitCast(d16, hn::PromoteTo(du16, bytes)), eight);
    };
    if constexpr (hn::MaxLanes(D16()) >= kQ8Block) {
      if (lanes == kQ8Block) {
        // One vector holds the block: both 128-bit halves see the 16 bytes; the lower half
        // keeps the low nibbles, the upper half the high ones.
        const auto bytes = hn::LoadDup128(du8, block.qs);
        const auto merged = hn::IfThenElse(hn::FirstN(du8, kQ8Block / 2), hn::And(bytes, mask),
                                           hn::ShiftRight<4>(bytes));
        madd_tokens<NT>(widen(merged), xq, base, sums);
        return;
      }
    }
    for (int64_t j = 0; j < kQ8Block / 2; j += lanes) {
      const auto bytes = hn::LoadU(du8, block.qs + j);
      madd_tokens<NT>(widen(hn::And(bytes, mask)), xq, base + j, sums);
      madd_tokens<NT>(widen(hn::ShiftRight<4>(bytes)), xq, base + kQ8Block / 2 + j, sums);
    }
  }
};

// Integer kernels: per block, int32 sums of weight x activation products, scaled once by
// d_w * d_x into F32 accumulators.
template <int NR, int NT, class Kind>
void dot_q8(const std::byte* const* w, const int16_t* const* xq, const float* const* xd,
            int64_t cols, float* out) {
  using Block = typename Kind::Block;
  const DF32 df;
  const D32 d32;
  const Block* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = reinterpret_cast<const Block*>(w[r]);
  hn::Vec<DF32> acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = hn::Zero(df);
  }
  for (int64_t b = 0; b < cols / kQ8Block; ++b) {
    for (int r = 0; r < NR; ++r) {
      hn::Vec<D32> sums[NT];
      for (int t = 0; t < NT; ++t) sums[t] = hn::Zero(d32);
      Kind::template dot<NT>(rows[r][b], xq, b * kQ8Block, sums);
      const float dw = half_to_float(rows[r][b].d);
      for (int t = 0; t < NT; ++t) {
        acc[r][t] = hn::MulAdd(hn::ConvertTo(df, sums[t]), hn::Set(df, dw * xd[t][b]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) out[r * NT + t] = sum_lanes(df, acc[r][t]);
  }
}

template <int NR, int NT>
void dot_tile(const MatmulOperands& m, int64_t r0, int64_t t0) {
  const std::byte* w[NR];
  for (int r = 0; r < NR; ++r) w[r] = m.w + static_cast<size_t>(r0 + r) * m.w_row_bytes;
  const float* x[NT];
  const int16_t* xq[NT];
  const float* xd[NT];
  const int64_t nblocks = m.cols / kQ8Block;
  for (int t = 0; t < NT; ++t) {
    x[t] = m.x ? m.x + (t0 + t) * m.cols : nullptr;
    xq[t] = m.xq ? m.xq + (t0 + t) * m.cols : nullptr;
    xd[t] = m.xd ? m.xd + (t0 + t) * nblocks : nullptr;
  }
  float out[NR * NT];
  switch (m.wtype) {
    case DType::F32:
      dot_float<NR, NT>(LoadF32(), w, x, m.cols, out);
      break;
    case DType::F16:
      dot_float<NR, NT>(LoadF16(), w, x, m.cols, out);
      break;
    case DType::BF16:
      dot_float<NR, NT>(LoadBF16(), w, x, m.cols, out);
      break;
    case DType::Q8_0:
      dot_q8<NR, NT, Q8_0Block>(w, xq, xd, m.cols, out);
      break;
    case DType::Q4_0:
      dot_q8<NR, NT, Q4_0Block>(w, xq, xd, m.cols, out);
      break;
    default:
      return;  // callers only pass the types above
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) m.y[(t0 + t) * m.y_stride + r0 + r] = out[r * NT + t];
  }
}

// Register tiles: kTileRows weight rows x kTileTokens tokens of accumulators. AVX-512 and
// NEON have 32 vector registers, enough for 4 x 4 accumulators plus the 4 weight vectors and
// one activation vector; AVX2 and SSE have 16, so their tiles are 4 x 2.
constexpr int kTileRows = 4;
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr int kTileTokens = 2;
#else
constexpr int kTileTokens = 4;
#endif

// The last tokens of a tile: count < kTileTokens.
template <int NR, int NT = kTileTokens - 1>
void token_tail(const MatmulOperands& m, int64_t r, int64_t t, int64_t count) {
  if constexpr (NT >= 1) {
    if (count == NT) return dot_tile<NR, NT>(m, r, t);
    token_tail<NR, NT - 1>(m, r, t, count);
  }
}

template <int NR>
void tile_row_group(const MatmulOperands& m, int64_t r, int64_t tok0, int64_t tok1) {
  int64_t t = tok0;
  for (; t + kTileTokens <= tok1; t += kTileTokens) dot_tile<NR, kTileTokens>(m, r, t);
  if (t < tok1) token_tail<NR>(m, r, t, tok1 - t);
}

// Groups of kTileRows rows, then single rows; in each, all tokens. The mat-vec of decode takes
// the same path: its outputs must equal a batch's bit for bit, and the rows of a group give
// the FMA chains their independence.
void MatmulTile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0, int64_t tok1) {
#if HWY_TARGET == HWY_AVX3_DL
  if (VnniMatmulTile(m, row0, row1, tok0, tok1)) return;
#endif
#if HWY_TARGET == HWY_AVX2
  if (Avx2LegacyTile(m, row0, row1, tok0, tok1)) return;
#endif
  int64_t r = row0;
  if (m.wtype == DType::Q4_0) {
    // Nibble unpacking needs registers of its own: 2-row tiles measured faster than 4.
    for (; r + 2 <= row1; r += 2) tile_row_group<2>(m, r, tok0, tok1);
  } else {
    for (; r + kTileRows <= row1; r += kTileRows) tile_row_group<kTileRows>(m, r, tok0, tok1);
  }
  for (; r < row1; ++r) tile_row_group<1>(m, r, tok0, tok1);
}

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace torchless::cpu {

HWY_EXPORT(MatmulTile);

void matmul_tile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0, int64_t tok1) {
  if (has_quant_dot(m.wtype)) return quant_matmul_tile(m, row0, row1, tok0, tok1);
  HWY_DYNAMIC_DISPATCH(MatmulTile)(m, row0, row1, tok0, tok1);
}

}  // namespace torchless::cpu
#endif
