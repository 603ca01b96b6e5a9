#pragma once
// The cases of the backend conformance suite, as data and plain functions, so that both the
// GoogleTest suite (tests/backends/conformance_*_test.cpp) and `torchless metal-selftest`
// (backends/metal/metal_selftest.cpp) run the same sizes, seeds, inputs and error bounds. No
// test framework here: checks are written by the callers.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "torchless/backends/backend.h"

namespace torchless::conformance {

struct Shape2 {
  int64_t rows, cols;
};
struct AttentionCase {
  int n_heads, n_kv_heads, head_dim, n_tokens, pos0, window;
};
struct RopeCase {
  int n_heads, head_dim, n_tokens, pos0;
};

// Sizes are data, per backend, so that a backend too slow for the full set could run fewer;
// today every backend, the emulated Metal device included, runs the full set.
struct Sizes {
  std::vector<Shape2> plain_shapes;  // any cols (F32, F16, BF16 weights)
  std::vector<Shape2> block_shapes;  // cols a multiple of 32
  std::vector<Shape2> k_shapes;      // cols a multiple of 256
  std::vector<int64_t> batch_tokens;
  std::vector<int64_t> row_lengths;  // elementwise and row-wise ops
  std::vector<AttentionCase> attention;
  std::vector<RopeCase> rope;
};
const Sizes& sizes_for(std::string_view backend);

// Weight dtypes every backend must multiply, and those it may (when supports_weight_dtype).
inline constexpr DType kRequiredWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                                 DType::Q4_0};
inline constexpr DType kOptionalWeightTypes[] = {
    DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,   DType::Q3_K,
    DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};
// The required types and the optional ones `backend` supports.
std::vector<DType> weight_types(const Backend& backend);
// The weight shapes for `dtype`: its rows must hold whole blocks.
const std::vector<Shape2>& shapes_for(DType dtype, const Sizes& sizes);
// The seed of a matmul case of n tokens over [rows, cols] weights.
uint64_t matmul_seed(DType dtype, int64_t rows, int64_t cols, int64_t n);
AttentionParams params_of(const AttentionCase& c);

// RoPE inverse frequencies theta^(-2i / head_dim), i < head_dim / 2.
std::vector<float> rope_frequencies(int head_dim, double theta);
// Absolute bound of RoPE over values |x| < 1: an F32 angle pos * f errs by up to pos * 2^-24
// radians, which moves a unit-size value by as much.
double rope_tolerance(const RopeCase& c);

// Embedding tables: `kEmbeddingVocab` rows of embedding_dim(dtype) (whole blocks), looked up
// with kEmbeddingIds (first and last rows, a repeat).
inline constexpr int64_t kEmbeddingVocab = 37;
inline constexpr int32_t kEmbeddingIds[] = {0, 36, 5, 5, 17};
int64_t embedding_dim(DType dtype);

// Uniform values in [lo, hi) from a fixed seed.
std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

Tensor upload_f32(Backend& backend, std::span<const float> values, const Shape& shape);

// Weights of a given dtype built with quantize_row, handed to the backend in place (to_device
// over `bytes`), and their exact dequantised values for the reference.
struct Weights {
  std::vector<std::byte> bytes;
  std::vector<float> values;
  Tensor tensor;
};
Weights make_weights(Backend& backend, DType dtype, int64_t rows, int64_t cols, uint64_t seed);

// A KV cache of `rows` valid rows plus 3 rows of large values that attention must never read;
// `values` as stored: rounded to F16 for F16 caches, the dequantised blocks for Q8_0 ones.
struct Cache {
  std::vector<float> values;
  Tensor tensor;
};
// The KV cache types a case can use on `backend`: Q8_0 where it has Q8_0 KV kernels and head_dim
// is a multiple of the 32-element blocks.
std::vector<DType> kv_types(const Backend& backend, const AttentionCase& c);
Cache make_cache(Backend& backend, DType dtype, int64_t rows, int64_t cols, uint64_t seed);

// Elements per activation scale when a backend multiplies `dtype` weights with activations
// quantised to 8 bits, as the CPU backend does: 32 for the 32-element types, 256 (one Q8_K
// block) for the K types, 0 for float weights.
int64_t activation_block(DType dtype);

// Relative error of each product w_c * x_c when `backend` multiplies n tokens of `dtype` weights
// with operands rounded to a narrower type: 0 but on CUDA's tensor-core GEMM, which rounds the
// activations (and dequantised weights) to F16 or BF16 as llama.cpp's cuBLAS path does; its
// bound is cuda::gemm_product_rounding (cuda_gemm_precision.h, docs/cuda.md).
double matmul_product_rounding(std::string_view backend, DType dtype, int64_t n);

// Tolerance of each y[t, r] = sum_c w[r, c] x[t, c] (row-major w [rows, cols], x [n, cols]),
// where activations may be quantised per `act_block` elements (0: never) and each product may
// be off by product_rounding relative (matmul_product_rounding). See the .cpp.
std::vector<double> matmul_tolerance(const std::vector<float>& w, const std::vector<float>& x,
                                     int64_t rows, int64_t cols, int64_t n, int64_t act_block,
                                     double product_rounding = 0.0);

// Tolerance abs + rel * |want| for every element.
std::vector<double> tolerance(const std::vector<double>& want, double abs, double rel);

// Float kernels of the row-wise and elementwise ops do O(1) roundings per element plus one row
// reduction, and the Exp of vector math libraries is within a few ulp: 1e-5 relative covers
// them with margin.
inline constexpr double kRowRel = 1e-5;
// Attention: q, k, v lie in [-1, 1], so a score's F32 rounding error is below ~1e-6 * head_dim
// * scale and each output (a convex combination of values in [-1, 1]) moves by less than that:
// 2e-5 is ample, and far below what a masking or indexing bug produces.
inline constexpr double kAttentionAbs = 2e-5;

}  // namespace torchless::conformance
