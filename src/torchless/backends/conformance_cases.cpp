// The conformance cases (conformance_cases.h): sizes, inputs and error bounds.
#include "torchless/backends/conformance_cases.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "torchless/backends/cuda/cuda_gemm_precision.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless::conformance {

const Sizes& sizes_for(std::string_view backend) {
  static const Sizes kFull{
      .plain_shapes = {{1, 1}, {7, 33}, {33, 1000}, {1000, 7}, {4097, 65}, {3, 4097}, {512, 2048}},
      .block_shapes =
          {{1, 32}, {7, 96}, {33, 1056}, {1000, 64}, {4097, 32}, {5, 4096}, {512, 2048}},
      .k_shapes = {{1, 256}, {7, 768}, {33, 256}, {300, 1024}},
      .batch_tokens = {2, 5, 17, 70},
      .row_lengths = {1, 7, 33, 1000, 4097},
      .attention = {{4, 4, 64, 1, 0, 0},
                    {8, 2, 64, 1, 37, 0},
                    {6, 1, 80, 1, 300, 0},
                    {4, 2, 5, 1, 100, 16},
                    {2, 1, 32, 1, 1000, 3},
                    {8, 8, 128, 7, 0, 0},
                    {4, 2, 64, 33, 5, 0},
                    {6, 3, 64, 33, 40, 8},
                    {4, 4, 16, 17, 0, 1},
                    // Sizes around the CUDA flash kernels' tiles (cuda_flash_attention.cu):
                    // decode splits the keys into chunks of >= 64 (4100 keys: 64 chunks, the
                    // last of 5; a window whose chunks start mid-cache; 16 query heads per KV
                    // head, two 8-head slices; 65 keys: two chunks), prefill tiles 16 (token,
                    // head) rows and 32 keys (rows straddling tokens, GQA 1/4/6/8, windows,
                    // head_dim 5 and 256, two tokens over a long cache). Few heads: the CPU
                    // reference and the Metal emulator run them too.
                    {4, 1, 64, 1, 4099, 0},
                    {8, 1, 64, 1, 2000, 700},
                    {16, 1, 256, 1, 129, 0},
                    {3, 3, 96, 1, 64, 0},
                    {8, 2, 64, 60, 37, 0},
                    {8, 1, 128, 40, 3, 20},
                    {2, 2, 256, 45, 20, 0},
                    {6, 1, 80, 50, 0, 33},
                    {4, 2, 5, 40, 10, 7},
                    {8, 2, 64, 2, 500, 0}},
      .rope = {{1, 2, 1, 0}, {3, 64, 5, 17}, {2, 128, 1, 3000}, {4, 80, 9, 1}},
  };
  (void)backend;  // every backend runs the full set: the emulator takes about a second
  return kFull;
}

std::vector<DType> weight_types(const Backend& backend) {
  std::vector<DType> types(std::begin(kRequiredWeightTypes), std::end(kRequiredWeightTypes));
  for (DType t : kOptionalWeightTypes) {
    if (backend.supports_weight_dtype(t)) types.push_back(t);
  }
  return types;
}

const std::vector<Shape2>& shapes_for(DType dtype, const Sizes& sizes) {
  const int64_t block = dtype_block_size(dtype);
  return block == 1 ? sizes.plain_shapes : block == 32 ? sizes.block_shapes : sizes.k_shapes;
}

uint64_t matmul_seed(DType dtype, int64_t rows, int64_t cols, int64_t n) {
  return static_cast<uint64_t>(dtype) * 1000003u +
         static_cast<uint64_t>(rows * 7919 + cols * 31 + n);
}

AttentionParams params_of(const AttentionCase& c) {
  AttentionParams p;
  p.n_tokens = c.n_tokens;
  p.pos0 = c.pos0;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.window = c.window;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  return p;
}

std::vector<float> rope_frequencies(int head_dim, double theta) {
  std::vector<float> f(static_cast<size_t>(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i) {
    f[static_cast<size_t>(i)] = static_cast<float>(std::pow(theta, -2.0 * i / head_dim));
  }
  return f;
}

double rope_tolerance(const RopeCase& c) {
  return 2e-6 + (c.pos0 + c.n_tokens) * 1.2e-7;
}

int64_t embedding_dim(DType dtype) {
  return dtype_block_size(dtype) == 256 ? 512 : 96;
}

std::vector<float> random_floats(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor upload_f32(Backend& backend, std::span<const float> values, const Shape& shape) {
  Tensor t = backend.alloc(shape, DType::F32);
  backend.upload(std::as_bytes(values), t);
  return t;
}

Weights make_weights(Backend& backend, DType dtype, int64_t rows, int64_t cols, uint64_t seed) {
  Weights w;
  const std::vector<float> raw = random_floats(static_cast<size_t>(rows * cols), seed);
  const size_t row_bytes = dtype_row_bytes(dtype, cols);
  w.bytes.resize(row_bytes * static_cast<size_t>(rows));
  w.values.resize(raw.size());
  for (int64_t r = 0; r < rows; ++r) {
    std::byte* dst = w.bytes.data() + static_cast<size_t>(r) * row_bytes;
    quantize_row(dtype, raw.data() + r * cols, dst, cols);
    dequantize_row(dtype, dst, w.values.data() + r * cols, cols);
  }
  w.tensor =
      backend.to_device(HostTensorView{Shape{rows, cols}, dtype, w.bytes.data(), w.bytes.size()});
  return w;
}

std::vector<DType> kv_types(const Backend& backend, const AttentionCase& c) {
  std::vector<DType> types = {DType::F32, DType::F16};
  if (c.head_dim % kQK == 0 && backend.supports_kv_dtype(DType::Q8_0)) {
    types.push_back(DType::Q8_0);
  }
  return types;
}

Cache make_cache(Backend& backend, DType dtype, int64_t rows, int64_t cols, uint64_t seed) {
  Cache c;
  c.values = random_floats(static_cast<size_t>((rows + 3) * cols), seed);
  for (size_t i = static_cast<size_t>(rows * cols); i < c.values.size(); ++i) c.values[i] = 1e4f;
  c.tensor = backend.alloc(Shape{rows + 3, cols}, dtype);
  if (dtype == DType::F32) {
    backend.upload(std::as_bytes(std::span(c.values)), c.tensor);
    return c;
  }
  if (dtype == DType::Q8_0) {
    std::vector<std::byte> blocks(c.tensor.nbytes());
    quantize_row(dtype, c.values.data(), blocks.data(), static_cast<int64_t>(c.values.size()));
    dequantize_row(dtype, blocks.data(), c.values.data(), static_cast<int64_t>(c.values.size()));
    backend.upload(blocks, c.tensor);
    return c;
  }
  std::vector<uint16_t> half(c.values.size());
  for (size_t i = 0; i < half.size(); ++i) {
    half[i] = fp32_to_fp16(c.values[i]);
    c.values[i] = fp16_to_fp32(half[i]);
  }
  backend.upload(std::as_bytes(std::span(half)), c.tensor);
  return c;
}

double matmul_product_rounding(std::string_view backend, DType dtype, int64_t n) {
  return backend == "cuda" ? cuda::gemm_product_rounding(dtype, n) : 0.0;
}

int64_t activation_block(DType dtype) {
  if (!dtype_is_quantized(dtype)) return 0;
  return dtype_block_size(dtype) == 256 ? 256 : 32;
}

// Tolerance of each y = sum_c w_c x_c:
// - F32 accumulation: a float sum of `cols` products errs by far less than 1e-5 * A, with
//   A = sum |w_c x_c| (the worst case is cols * 2^-24 * A; blocked SIMD sums stay near
//   sqrt(cols) * 2^-24 * A, about 4e-6 * A at 4096 columns).
// - Quantised weights may be multiplied with activations quantised to 8 bits per block of
//   act_block elements (as llama.cpp and our CPU backend do): each x_c then moves by at most
//   d/2 = amax_b / 254, with amax_b the block's largest |x|, so y moves by at most
//   sum_b amax_b / 254 * sum_{c in b} |w_c|. That bound is exact, not statistical; 1% covers
//   the rounding of the scale itself.
// - Operands rounded to a narrower type before an exact multiply and an F32 sum (tensor cores),
//   each product by at most product_rounding relative: y moves by at most product_rounding * A.
std::vector<double> matmul_tolerance(const std::vector<float>& w, const std::vector<float>& x,
                                     int64_t rows, int64_t cols, int64_t n, int64_t act_block,
                                     double product_rounding) {
  std::vector<double> tol(static_cast<size_t>(rows * n));
  const int64_t block = act_block > 0 ? act_block : cols;
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x.data() + t * cols;
    for (int64_t r = 0; r < rows; ++r) {
      const float* wr = w.data() + r * cols;
      double a = 0, q = 0;
      for (int64_t b0 = 0; b0 < cols; b0 += block) {
        const int64_t b1 = std::min(cols, b0 + block);
        double amax = 0, wsum = 0;
        for (int64_t c = b0; c < b1; ++c) {
          a += std::fabs(static_cast<double>(wr[c]) * xt[c]);
          amax = std::max(amax, static_cast<double>(std::fabs(xt[c])));
          wsum += std::fabs(wr[c]);
        }
        q += amax / 254.0 * wsum;
      }
      tol[static_cast<size_t>(t * rows + r)] =
          (1e-5 + product_rounding) * a + (act_block > 0 ? 1.01 * q : 0.0) + 1e-30;
    }
  }
  return tol;
}

std::vector<double> tolerance(const std::vector<double>& want, double abs, double rel) {
  std::vector<double> tol(want.size());
  for (size_t i = 0; i < want.size(); ++i) tol[i] = abs + rel * std::fabs(want[i]);
  return tol;
}

}  // namespace torchless::conformance
