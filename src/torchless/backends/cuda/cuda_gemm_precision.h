#pragma once
// How the CUDA backend multiplies a batch of tokens (cuda_gemm.h), as plain constants that the
// conformance suite reads to bound the results of each path (conformance_cases.cpp).
#include <cstdint>

#include "torchless/core/dtype.h"

namespace torchless::cuda {

// Tokens up to which a batched matmul runs the mat-vec kernel once per token (weights then come
// from L2 after the first token, F32 activations); above it, cuBLAS GEMM.
inline constexpr int64_t kMatvecTokens = 8;

// Relative rounding of each product w_c * x_c in the batched matmul of n tokens: 0 where both
// operands stay exact in F32 (mat-vec; F32 weights: SGEMM), else the unit roundoff of the
// tensor-core operands. F16 weights: x rounded to F16 (2^-11), weights exact. BF16 weights: x
// rounded to BF16 (2^-8). Quantised weights: x and the dequantised weights both rounded to F16,
// (1 + 2^-11)^2 - 1 <= 2^-10 + 2^-22. Products and sums are then exact/F32 on the tensor cores.
constexpr double gemm_product_rounding(DType dtype, int64_t n_tokens) {
  if (n_tokens <= kMatvecTokens || dtype == DType::F32) return 0.0;
  constexpr double kF16 = 1.0 / 2048.0;
  if (dtype == DType::F16) return kF16;
  if (dtype == DType::BF16) return 1.0 / 256.0;
  return 2.0 * kF16 + kF16 * kF16;
}

}  // namespace torchless::cuda
