// Row-wise F32 kernels (norms, activations, softmax, conversions) and the per-head loops of
// attention, compiled for every instruction set Highway targets.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "torchless/backends/cpu/cpu_vector_kernels.cpp"
// foreach_target.h must come first: it re-includes this file once per target.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
// clang-format on

#include <algorithm>
#include <cmath>
#include <limits>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DH = hn::Rebind<hwy::float16_t, DF>;
using DB = hn::Rebind<hwy::bfloat16_t, DF>;

inline int64_t lanes_of(DF df) {
  return static_cast<int64_t>(hn::Lanes(df));
}

float DotF32(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t lanes = lanes_of(df);
  auto acc0 = hn::Zero(df);
  auto acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + lanes), hn::LoadU(df, b + i + lanes), acc1);
  }
  for (; i + lanes <= n; i += lanes) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotF16(const float* a, const uint16_t* b16, int64_t n) {
  const DF df;
  const DH dh;
  const auto* b = reinterpret_cast<const hwy::float16_t*>(b16);
  const int64_t lanes = lanes_of(df);
  auto acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    acc = hn::MulAdd(hn::LoadU(df, a + i), hn::PromoteTo(df, hn::LoadU(dh, b + i)), acc);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) sum += a[i] * fp16_to_fp32(b16[i]);
  return sum;
}

void AxpyF32(float s, const float* x, float* y, int64_t n) {
  const DF df;
  const int64_t lanes = lanes_of(df);
  const auto vs = hn::Set(df, s);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::MulAdd(vs, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] += s * x[i];
}

void AxpyF16(float s, const uint16_t* x16, float* y, int64_t n) {
  const DF df;
  const DH dh;
  const auto* x = reinterpret_cast<const hwy::float16_t*>(x16);
  const int64_t lanes = lanes_of(df);
  const auto vs = hn::Set(df, s);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto xv = hn::PromoteTo(df, hn::LoadU(dh, x + i));
    hn::StoreU(hn::MulAdd(vs, xv, hn::LoadU(df, y + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] += s * fp16_to_fp32(x16[i]);
}

// Q8_0 rows (core/quant.h): blocks of 32 int8 codes with an F16 scale. The codes are widened
// to float and scaled per block, so the arithmetic is the F32 kernels' on the dequantised row.
// Vectors never exceed 16 floats on the enabled targets, so a block is whole vectors.
using DI32 = hn::RebindToSigned<DF>;
using DI8 = hn::Rebind<int8_t, DF>;

template <typename Fn>
void ForEachQ8_0Vector(const BlockQ8_0* blocks, int64_t n, Fn&& fn) {
  const DF df;
  const DI32 di32;
  const DI8 di8;
  const int64_t lanes = lanes_of(df);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const auto d = hn::Set(df, fp16_to_fp32(blocks[b].d));
    for (int64_t j = 0; j < kQK; j += lanes) {
      const auto codes = hn::PromoteTo(di32, hn::LoadU(di8, blocks[b].qs + j));
      fn(b * kQK + j, hn::Mul(d, hn::ConvertTo(df, codes)));
    }
  }
}

float DotQ8_0(const float* a, const BlockQ8_0* b, int64_t n) {
  const DF df;
  auto acc = hn::Zero(df);
  ForEachQ8_0Vector(
      b, n, [&](int64_t i, auto values) { acc = hn::MulAdd(hn::LoadU(df, a + i), values, acc); });
  return hn::GetLane(hn::SumOfLanes(df, acc));
}

void AxpyQ8_0(float s, const BlockQ8_0* x, float* y, int64_t n) {
  const DF df;
  const auto vs = hn::Set(df, s);
  ForEachQ8_0Vector(x, n, [&](int64_t i, auto values) {
    hn::StoreU(hn::MulAdd(vs, values, hn::LoadU(df, y + i)), df, y + i);
  });
}

float SumSquares(const float* x, int64_t n) {
  return DotF32(x, x, n);
}

void ScaleMul(const float* x, const float* w, float s, float* y, int64_t n) {
  const DF df;
  const int64_t lanes = lanes_of(df);
  const auto vs = hn::Set(df, s);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vs), hn::LoadU(df, w + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] = x[i] * s * w[i];
}

void SoftmaxRow(float* x, int64_t n) {
  const DF df;
  const int64_t lanes = lanes_of(df);
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  const auto vmax = hn::Set(df, max);
  auto vsum = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmax));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const auto inv = hn::Set(df, 1.0f / sum);
  i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), inv), df, x + i);
  for (; i < n; ++i) x[i] /= sum;
}

// silu(g) = g / (1 + exp(-g)). Highway's Exp is valid only up to +104, so -g is clamped at 88
// (e^88 is near FLT_MAX), which still gives silu(g) = g / 1.6e38 ≈ 0 for very negative g.
template <class V>
V silu_vec(DF df, V g) {
  const auto one = hn::Set(df, 1.0f);
  const auto neg = hn::Min(hn::Neg(g), hn::Set(df, 88.0f));
  return hn::Div(g, hn::Add(one, hn::Exp(df, neg)));
}

// The element-wise SiLU ops send every element, the tail included (through a padded copy),
// through silu_vec: an element's result must not depend on where the caller's chunk of a
// flat array starts, which follows the batch size (docs/batching.md).
constexpr int64_t kMaxFloatLanes = 64;  // 2048-bit vectors

void SiluRow(float* x, int64_t n) {
  const DF df;
  const int64_t lanes = lanes_of(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(silu_vec(df, hn::LoadU(df, x + i)), df, x + i);
  if (i == n) return;
  float tail[kMaxFloatLanes] = {};
  std::copy(x + i, x + n, tail);
  hn::StoreU(silu_vec(df, hn::LoadU(df, tail)), df, tail);
  std::copy(tail, tail + (n - i), x + i);
}

void SiluMulRow(const float* gate, const float* up, float* out, int64_t n) {
  const DF df;
  const int64_t lanes = lanes_of(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto g = silu_vec(df, hn::LoadU(df, gate + i));
    hn::StoreU(hn::Mul(g, hn::LoadU(df, up + i)), df, out + i);
  }
  if (i == n) return;
  float g_tail[kMaxFloatLanes] = {};
  float u_tail[kMaxFloatLanes] = {};
  std::copy(gate + i, gate + n, g_tail);
  std::copy(up + i, up + n, u_tail);
  hn::StoreU(hn::Mul(silu_vec(df, hn::LoadU(df, g_tail)), hn::LoadU(df, u_tail)), df, g_tail);
  std::copy(g_tail, g_tail + (n - i), out + i);
}

void AddRow(const float* a, const float* b, float* out, int64_t n) {
  const DF df;
  const int64_t lanes = lanes_of(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Add(hn::LoadU(df, a + i), hn::LoadU(df, b + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

void F16ToF32(const uint16_t* src16, float* dst, int64_t n) {
  const DF df;
  const DH dh;
  const auto* src = reinterpret_cast<const hwy::float16_t*>(src16);
  const int64_t lanes = lanes_of(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, src + i)), df, dst + i);
  for (; i < n; ++i) dst[i] = fp16_to_fp32(src16[i]);
}

void BF16ToF32(const uint16_t* src16, float* dst, int64_t n) {
  const DF df;
  const DB db;
  const auto* src = reinterpret_cast<const hwy::bfloat16_t*>(src16);
  const int64_t lanes = lanes_of(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::PromoteTo(df, hn::LoadU(db, src + i)), df, dst + i);
  for (; i < n; ++i) dst[i] = bf16_to_fp32(src16[i]);
}

// Scalar on purpose: half.h rounds to nearest even for every input, including subnormals and
// overflow, and KV stores are a tiny share of a token's time.
void F32ToF16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

float DotKvRow(const float* q, const std::byte* row, DType kv_type, int64_t head_dim) {
  switch (kv_type) {
    case DType::F16:
      return DotF16(q, reinterpret_cast<const uint16_t*>(row), head_dim);
    case DType::Q8_0:
      return DotQ8_0(q, reinterpret_cast<const BlockQ8_0*>(row), head_dim);
    default:
      return DotF32(q, reinterpret_cast<const float*>(row), head_dim);
  }
}

void AttentionScoresRow(const float* q, const std::byte* k, size_t row_bytes, DType kv_type,
                        int64_t head_dim, int64_t p0, int64_t p1, float scale, float* scores) {
  for (int64_t p = p0; p < p1; ++p) {
    const std::byte* row = k + static_cast<size_t>(p) * row_bytes;
    scores[p - p0] = scale * DotKvRow(q, row, kv_type, head_dim);
  }
}

void WeightedSumAddRow(const float* weights, const std::byte* v, size_t row_bytes, DType kv_type,
                       int64_t head_dim, int64_t p0, int64_t p1, float* out) {
  for (int64_t p = p0; p < p1; ++p) {
    const float w = weights[p - p0];
    if (w == 0.0f) continue;  // masked positions of a window
    const std::byte* row = v + static_cast<size_t>(p) * row_bytes;
    switch (kv_type) {
      case DType::F16:
        AxpyF16(w, reinterpret_cast<const uint16_t*>(row), out, head_dim);
        break;
      case DType::Q8_0:
        AxpyQ8_0(w, reinterpret_cast<const BlockQ8_0*>(row), out, head_dim);
        break;
      default:
        AxpyF32(w, reinterpret_cast<const float*>(row), out, head_dim);
        break;
    }
  }
}

void WeightedSumRow(const float* weights, const std::byte* v, size_t row_bytes, DType kv_type,
                    int64_t head_dim, int64_t p0, int64_t p1, float* out) {
  for (int64_t i = 0; i < head_dim; ++i) out[i] = 0.0f;
  WeightedSumAddRow(weights, v, row_bytes, kv_type, head_dim, p0, p1, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace torchless::cpu {

HWY_EXPORT(DotF32);
HWY_EXPORT(SumSquares);
HWY_EXPORT(ScaleMul);
HWY_EXPORT(SoftmaxRow);
HWY_EXPORT(SiluRow);
HWY_EXPORT(SiluMulRow);
HWY_EXPORT(AddRow);
HWY_EXPORT(F16ToF32);
HWY_EXPORT(BF16ToF32);
HWY_EXPORT(F32ToF16);
HWY_EXPORT(AttentionScoresRow);
HWY_EXPORT(WeightedSumRow);
HWY_EXPORT(WeightedSumAddRow);

float dot_f32(const float* a, const float* b, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n);
}
float sum_squares(const float* x, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(SumSquares)(x, n);
}
void scale_mul(const float* x, const float* w, float s, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(ScaleMul)(x, w, s, y, n);
}
void softmax_row(float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SoftmaxRow)(x, n);
}
void silu_row(float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluRow)(x, n);
}
void silu_mul_row(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulRow)(gate, up, out, n);
}
void add_row(const float* a, const float* b, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddRow)(a, b, out, n);
}
void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F16ToF32)(src, dst, n);
}
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(BF16ToF32)(src, dst, n);
}
void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F32ToF16)(src, dst, n);
}
void attention_scores_row(const float* q, const std::byte* k, size_t row_bytes, DType kv_type,
                          int64_t head_dim, int64_t p0, int64_t p1, float scale, float* scores) {
  HWY_DYNAMIC_DISPATCH(AttentionScoresRow)
  (q, k, row_bytes, kv_type, head_dim, p0, p1, scale, scores);
}
void weighted_sum_row(const float* weights, const std::byte* v, size_t row_bytes, DType kv_type,
                      int64_t head_dim, int64_t p0, int64_t p1, float* out) {
  HWY_DYNAMIC_DISPATCH(WeightedSumRow)(weights, v, row_bytes, kv_type, head_dim, p0, p1, out);
}
void weighted_sum_add_row(const float* weights, const std::byte* v, size_t row_bytes, DType kv_type,
                          int64_t head_dim, int64_t p0, int64_t p1, float* out) {
  HWY_DYNAMIC_DISPATCH(WeightedSumAddRow)(weights, v, row_bytes, kv_type, head_dim, p0, p1, out);
}

}  // namespace torchless::cpu
#endif
