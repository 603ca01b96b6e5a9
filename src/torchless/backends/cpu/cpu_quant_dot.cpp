// Tiles of integer dot products between quantised weight rows and quantised activation rows
// (cpu_quant_dot.h), compiled for every instruction set Highway targets. Per weight block the
// int16 codes, multiplied by their integer sub-block scales, meet the int16 activation codes in
// multiply-adds into int32 (vpmaddwd on x86, smlal on NEON); one float multiply-add per block
// and token applies the block scales. Products stay far inside int32: |code * scale| <= 4096
// (Q6_K: 32 * 128; IQ4_XS: 127 * 32) and |activation| <= 127, over at most 256 elements.

// AVX3_DL (Ice Lake, Zen 4 and later) carries the VNNI kernels of cpu_quant_vnni-inl.h; Highway
// compiles it only when asked.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "torchless/backends/cpu/cpu_quant_dot.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "torchless/backends/cpu/cpu_quant_avx2_kpack-inl.h"
#include "torchless/backends/cpu/cpu_quant_blocks-inl.h"
#include "torchless/backends/cpu/cpu_quant_dot.h"
#include "torchless/backends/cpu/cpu_quant_vnni-inl.h"
#include "torchless/backends/cpu/cpu_repack.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 32 int16 lanes: a vector never spans two 32-element runs of a block.
using D16 = hn::CappedTag<int16_t, 32>;
using D32 = hn::Repartition<int32_t, D16>;
using DF = hn::Repartition<float, D16>;
inline constexpr int kLanes = static_cast<int>(hn::MaxLanes(D16()));

// The integer scales of elements E .. E + kLanes, from per-16 scales.
template <class Kind, int E>
hn::Vec<D16> chunk_scales(const int16_t* scales) {
  const D16 d16;
  if constexpr (kLanes <= Kind::kScaleGroup || kLanes <= 16) {
    return hn::Set(d16, scales[E / 16]);
  } else {
    return hn::IfThenElse(hn::FirstN(d16, 16), hn::Set(d16, scales[E / 16]),
                          hn::Set(d16, scales[E / 16 + 1]));
  }
}

// Accumulates the products of one weight block with NT activation rows into s0/s1 (the two
// halves of ReorderWidenMulAccumulate), chunk by chunk with compile-time offsets.
template <class Kind, int NT, int... E>
void block_products(const typename Kind::Block& block, const BlockHeader& h,
                    const int16_t* const* xq, std::integer_sequence<int, E...>, hn::Vec<D32>* s0,
                    hn::Vec<D32>* s1) {
  const D16 d16;
  const D32 d32;
  auto chunk = [&](auto e) {
    constexpr int kE = decltype(e)::value;
    auto wv = Kind::template codes<kE>(d16, block);
    if constexpr (Kind::kScaleGroup > 0) wv = hn::Mul(wv, chunk_scales<Kind, kE>(h.scales));
    for (int t = 0; t < NT; ++t) {
      s0[t] = hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, xq[t] + kE), s0[t], s1[t]);
    }
  };
  (chunk(std::integral_constant<int, E * kLanes>()), ...);
}

// sum over the block's groups of mins[g] * sums[g] (the offset term's integer part).
template <class Kind>
float offset_sum(const BlockHeader& h, const int16_t* sums) {
  if constexpr (Kind::kSumGroups == 1) {
    return static_cast<float>(sums[0]);
  } else {
    const hn::CappedTag<int16_t, 16> d16;
    const hn::Repartition<int32_t, decltype(d16)> d32;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d16));
    auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
    for (int64_t g = 0; g < Kind::kSumGroups; g += lanes) {
      s0 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, h.mins + g), hn::LoadU(d16, sums + g),
                                         s0, s1);
    }
    return static_cast<float>(hn::GetLane(hn::SumOfLanes(d32, hn::RearrangeToOddPlusEven(s0, s1))));
  }
}

// Activation rows of one tile: codes, scales and sums of NT tokens.
template <int NT>
struct ActRows {
  const int16_t* q[NT];
  const float* d[NT];
  const int16_t* sums[NT];
};

// out[r * NT + t] = dot(weight row r, activation row t) for an NR x NT tile: each weight block
// is decoded once for NT tokens.
template <class Kind, int NR, int NT>
void quant_dot(const std::byte* const* w, const ActRows<NT>& x, int64_t cols, float* out) {
  using Block = typename Kind::Block;
  constexpr int kChunks = Kind::kElems / kLanes;
  const DF df;
  const D32 d32;
  hn::Vec<DF> acc[NR][NT];
  float offset[NR][NT] = {};
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = hn::Zero(df);
  }
  for (int64_t b = 0; b < cols / Kind::kElems; ++b) {
    const int16_t* xq[NT];
    for (int t = 0; t < NT; ++t) xq[t] = x.q[t] + b * Kind::kElems;
    for (int r = 0; r < NR; ++r) {
      const Block& block = reinterpret_cast<const Block*>(w[r])[b];
      BlockHeader h;
      Kind::header(block, h);
      hn::Vec<D32> s0[NT], s1[NT];
      for (int t = 0; t < NT; ++t) s0[t] = s1[t] = hn::Zero(d32);
      block_products<Kind, NT>(block, h, xq, std::make_integer_sequence<int, kChunks>(), s0, s1);
      for (int t = 0; t < NT; ++t) {
        const auto sum = hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s0[t], s1[t]));
        acc[r][t] = hn::MulAdd(sum, hn::Set(df, h.d * x.d[t][b]), acc[r][t]);
        if constexpr (Kind::kSumGroups > 0) {
          const int16_t* sums = x.sums[t] + b * Kind::kSumGroups;
          offset[r][t] += h.m * x.d[t][b] * offset_sum<Kind>(h, sums);
        }
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) {
      out[r * NT + t] = hn::GetLane(hn::SumOfLanes(df, acc[r][t])) + offset[r][t];
    }
  }
}

template <class Kind, int NR, int NT>
void quant_tile(const MatmulOperands& m, int64_t r0, int64_t t0) {
  const int64_t block = Kind::kElems == kQK ? kQ8Block : kQ8KBlock;
  const std::byte* w[NR];
  for (int r = 0; r < NR; ++r) w[r] = m.w + static_cast<size_t>(r0 + r) * m.w_row_bytes;
  ActRows<NT> x;
  for (int t = 0; t < NT; ++t) {
    x.q[t] = m.xq + (t0 + t) * m.cols;
    x.d[t] = m.xd + (t0 + t) * (m.cols / block);
    const int64_t sums_per_row = m.cols / Kind::kElems * Kind::kSumGroups;
    x.sums[t] = m.xsum ? m.xsum + (t0 + t) * sums_per_row : nullptr;
  }
  float out[NR * NT];
  quant_dot<Kind, NR, NT>(w, x, m.cols, out);
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) m.y[(t0 + t) * m.y_stride + r0 + r] = out[r * NT + t];
  }
}

// Tiles of 2 rows x 4 tokens where there are at least 4 tokens, narrower ones at the edges.
template <class Kind>
void quant_tiles(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0, int64_t tok1) {
  if (tok1 - tok0 < 4) {
    for (int64_t r = row0; r < row1; ++r) {
      for (int64_t t = tok0; t < tok1; ++t) quant_tile<Kind, 1, 1>(m, r, t);
    }
    return;
  }
  auto row_group = [&](auto nr, int64_t r) {
    constexpr int kNR = decltype(nr)::value;
    int64_t t = tok0;
    for (; t + 4 <= tok1; t += 4) quant_tile<Kind, kNR, 4>(m, r, t);
    for (; t < tok1; ++t) quant_tile<Kind, kNR, 1>(m, r, t);
  };
  int64_t r = row0;
  for (; r + 2 <= row1; r += 2) row_group(std::integral_constant<int, 2>(), r);
  if (r < row1) row_group(std::integral_constant<int, 1>(), r);
}

void QuantMatmulTile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                     int64_t tok1);

// Repacked weights met by a target without the VNNI kernels (only when the dispatch changes
// after loading, as in tests): each group of 16 rows is unpacked into per-thread scratch and
// run through this target's plain kernels, so the results are theirs.
void unpacked_tile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                   int64_t tok1) {
  thread_local std::vector<std::byte> plain;
  plain.resize(m.w_row_bytes * kRepackRows);
  for (int64_t first = row0; first < row1; first += kRepackRows) {
    const int64_t last = std::min<int64_t>(row1, first + kRepackRows);
    unpack_rows(m.wtype, m.w, m.cols, first, last, plain.data());
    MatmulOperands g = m;
    g.w = plain.data();
    g.w_repacked = false;
    g.y = m.y + first;
    QuantMatmulTile(g, 0, last - first, tok0, tok1);
  }
}

void QuantMatmulTile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                     int64_t tok1) {
#if HWY_TARGET == HWY_AVX3_DL
  if (VnniMatmulTile(m, row0, row1, tok0, tok1)) return;
#endif
#if HWY_TARGET == HWY_AVX2
  if (Avx2KMatmulTile(m, row0, row1, tok0, tok1)) return;
#endif
  if (m.w_repacked) return unpacked_tile(m, row0, row1, tok0, tok1);
  switch (m.wtype) {
    case DType::Q2_K:
      return quant_tiles<Q2K>(m, row0, row1, tok0, tok1);
    case DType::Q3_K:
      return quant_tiles<Q3K>(m, row0, row1, tok0, tok1);
    case DType::Q4_K:
      return quant_tiles<Q4K>(m, row0, row1, tok0, tok1);
    case DType::Q5_K:
      return quant_tiles<Q5K>(m, row0, row1, tok0, tok1);
    case DType::Q6_K:
      return quant_tiles<Q6K>(m, row0, row1, tok0, tok1);
    case DType::Q4_1:
      return quant_tiles<Q4_1>(m, row0, row1, tok0, tok1);
    case DType::Q5_0:
      return quant_tiles<Q5_0>(m, row0, row1, tok0, tok1);
    case DType::Q5_1:
      return quant_tiles<Q5_1>(m, row0, row1, tok0, tok1);
    case DType::IQ4_NL:
      return quant_tiles<IQ4NL>(m, row0, row1, tok0, tok1);
    case DType::IQ4_XS:
      return quant_tiles<IQ4XS>(m, row0, row1, tok0, tok1);
    default:
      return;  // has_quant_dot() is false for every other type
  }
}

bool HasVnniKernels() {
  return HWY_TARGET == HWY_AVX3_DL;
}

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace torchless::cpu {

HWY_EXPORT(QuantMatmulTile);
HWY_EXPORT(HasVnniKernels);

bool has_vnni_kernels() {
  return HWY_DYNAMIC_DISPATCH(HasVnniKernels)();
}

bool has_quant_dot(DType type) {
  switch (type) {
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::IQ4_NL:
    case DType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

void quant_matmul_tile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                       int64_t tok1) {
  HWY_DYNAMIC_DISPATCH(QuantMatmulTile)(m, row0, row1, tok0, tok1);
}

}  // namespace torchless::cpu
#endif
