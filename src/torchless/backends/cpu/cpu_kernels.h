#pragma once
// The CPU backend's SIMD kernels: plain functions over raw pointers, compiled once per
// instruction set by Highway (cpu_matmul_kernels.cpp, cpu_vector_kernels.cpp) and dispatched
// at run time to the best one the CPU has. Threading and validation live in the callers.
#include <cstddef>
#include <cstdint>

#include "torchless/core/dtype.h"

namespace torchless::cpu {

// Activations for the integer dot products of Q8_0/Q4_0 weights: each row of x cut into
// blocks of 32 with one float scale per block and values in [-127, 127], stored widened to
// int16 so the kernels multiply-add pairs without a sign-extension step on the x side.
inline constexpr int kQ8Block = 32;

// One weight matrix times a set of activation rows.
struct MatmulOperands {
  DType wtype = DType::F32;  // F32, F16, BF16 or any quantised type (cpu_quant_dot.h)
  const std::byte* w = nullptr;
  size_t w_row_bytes = 0;  // of the plain layout
  // w is in the layout of cpu_repack.h (16 rows interleaved); row ranges passed to
  // matmul_tile then start on a multiple of 16.
  bool w_repacked = false;
  int64_t cols = 0;
  const float* x = nullptr;       // F32 activations (F32/F16/BF16 weights), row stride cols
  const int16_t* xq = nullptr;    // Q8 activations (quantised weights), row stride cols
  const int8_t* xq8 = nullptr;    // the same codes as int8 (VNNI and AVX2 int8 kernels), or null
  const float* xd = nullptr;      // their scales, row stride cols / 32 (Q8_K: cols / 256)
  const int16_t* xsum = nullptr;  // sums of their codes, for weights with offsets
  float* y = nullptr;             // y[t * y_stride + r]
  int64_t y_stride = 0;
};

// y[t, r] = dot(W row r, x row t) for r in [row0, row1), t in [tok0, tok1). Each weight block
// is loaded once for up to four tokens, so the caller tiles tokens to keep x in cache.
void matmul_tile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0, int64_t tok1);

// --- row kernels over F32 ---
float dot_f32(const float* a, const float* b, int64_t n);
float sum_squares(const float* x, int64_t n);
void scale_mul(const float* x, const float* w, float s, float* y, int64_t n);  // y = x*s*w
void softmax_row(float* x, int64_t n);
void silu_row(float* x, int64_t n);
void silu_mul_row(const float* gate, const float* up, float* out, int64_t n);
void add_row(const float* a, const float* b, float* out, int64_t n);

// --- conversions ---
void f16_to_f32(const uint16_t* src, float* dst, int64_t n);
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f32_to_f16(const float* src, uint16_t* dst, int64_t n);

// --- attention over a KV cache of F32, F16 or Q8_0 rows (row_bytes apart), one head ---
// k and v point at the head's first element (a Q8_0 head starts on a block: head_dim % 32 == 0).
// scores[p - p0] = scale * dot(q, K[p] + head_offset) for p in [p0, p1).
void attention_scores_row(const float* q, const std::byte* k, size_t row_bytes, DType kv_type,
                          int64_t head_dim, int64_t p0, int64_t p1, float scale, float* scores);
// out[0, head_dim) = sum over p in [p0, p1) of weights[p - p0] * V[p].
void weighted_sum_row(const float* weights, const std::byte* v, size_t row_bytes, DType kv_type,
                      int64_t head_dim, int64_t p0, int64_t p1, float* out);
// The same, adding to out instead of overwriting it: a paged cache sums block by block, in the
// same position order, so the result equals weighted_sum_row's over contiguous rows.
void weighted_sum_add_row(const float* weights, const std::byte* v, size_t row_bytes, DType kv_type,
                          int64_t head_dim, int64_t p0, int64_t p1, float* out);

}  // namespace torchless::cpu
