// Activation quantisation for the integer dot products of cpu_quant_dot.cpp: blocks of 32 (Q8)
// or 256 (Q8_K) values share one float scale amax / 127, codes round to nearest, and the
// types whose weights carry an offset also get the sums of the codes per group.

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "torchless/backends/cpu/cpu_quantize_act.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "torchless/backends/cpu/cpu_quant_dot.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lanes never exceed the smallest block (32), so every block is a whole number of vectors.
using DF = hn::CappedTag<float, kQ8Block>;

float block_absmax(const float* x, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto amax = hn::Zero(df);
  for (int64_t j = 0; j < n; j += lanes) amax = hn::Max(amax, hn::Abs(hn::LoadU(df, x + j)));
  return hn::GetLane(hn::MaxOfLanes(df, amax));
}

void QuantizeBlocksRow(const float* x, int64_t cols, int64_t block, int16_t* q, float* d) {
  const DF df;
  const hn::Rebind<int16_t, DF> di16;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t b = 0; b < cols / block; ++b) {
    const float* xb = x + b * block;
    const float m = block_absmax(xb, block);
    d[b] = m / 127.0f;
    const auto scale = hn::Set(df, m > 0.0f ? 127.0f / m : 0.0f);
    for (int64_t j = 0; j < block; j += lanes) {
      const auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + j), scale));
      hn::StoreU(hn::DemoteTo(di16, qi), di16, q + b * block + j);
    }
  }
}

// sums[g] = sum of q[g * group, (g + 1) * group); |sum| <= 32 * 127 fits int16.
void SumGroups(const int16_t* q, int64_t cols, int64_t group, int16_t* sums) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d16));
  const auto ones = hn::Set(d16, int16_t{1});
  for (int64_t g = 0; g < cols / group; ++g) {
    auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
    for (int64_t j = 0; j < group; j += lanes) {
      s0 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, q + g * group + j), ones, s0, s1);
    }
    const auto sum = hn::RearrangeToOddPlusEven(s0, s1);
    sums[g] = static_cast<int16_t>(hn::GetLane(hn::SumOfLanes(d32, sum)));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace torchless::cpu {

HWY_EXPORT(QuantizeBlocksRow);
HWY_EXPORT(SumGroups);

int activation_block(DType type) {
  switch (type) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::IQ4_NL:
      return kQ8Block;
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_XS:
      return kQ8KBlock;
    default:
      return 0;
  }
}

int activation_sum_group(DType type) {
  switch (type) {
    case DType::Q4_0:  // the VNNI kernel's offset of 8 (cpu_quant_vnni-inl.h)
    case DType::Q4_1:
    case DType::Q5_1:
      return kQ8Block;
    case DType::Q2_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:  // the VNNI rows-in-lanes kernel's offset of 32 (cpu_quant_vnni-inl.h)
      return 16;
    default:
      return 0;
  }
}

void quantize_activation_row(DType type, const float* x, int64_t cols, int16_t* q, float* d,
                             int16_t* sums) {
  HWY_DYNAMIC_DISPATCH(QuantizeBlocksRow)(x, cols, activation_block(type), q, d);
  if (const int group = activation_sum_group(type); group > 0) {
    HWY_DYNAMIC_DISPATCH(SumGroups)(q, cols, group, sums);
  }
}

void narrow_codes(const int16_t* q, int64_t cols, int8_t* q8) {
  for (int64_t i = 0; i < cols; ++i) q8[i] = static_cast<int8_t>(q[i]);
}

}  // namespace torchless::cpu
#endif
