#pragma once
// Shared pieces of the backend conformance suite (conformance_*_test.cpp): the list of
// backends it runs on, the sizes per backend, random data and comparison helpers.
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/backends/backend.h"

namespace torchless::conformance {

// Every backend named here runs the whole suite; one that this build or machine lacks is
// skipped with the reason. A new backend joins by adding its init_backend name.
inline constexpr std::array<std::string_view, 3> kBackends = {"cpu", "metal-emulated", "cuda"};

struct Shape2 {
  int64_t rows, cols;
};
struct AttentionCase {
  int n_heads, n_kv_heads, head_dim, n_tokens, pos0, window;
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
};
const Sizes& sizes_for(std::string_view backend);

class BackendTest : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override;
  Backend& backend() { return *backend_; }
  const Sizes& sizes() const { return sizes_for(GetParam()); }

 private:
  std::unique_ptr<Backend> backend_;
};

std::string backend_test_name(const ::testing::TestParamInfo<std::string_view>& info);

// Uniform values in [lo, hi) from a fixed seed.
std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

Tensor upload_f32(Backend& backend, const std::vector<float>& values, const Shape& shape);

// Weights of a given dtype built with quantize_row, handed to the backend in place (to_device
// over `bytes`), and their exact dequantised values for the reference.
struct Weights {
  std::vector<std::byte> bytes;
  std::vector<float> values;
  Tensor tensor;
};
Weights make_weights(Backend& backend, DType dtype, int64_t rows, int64_t cols, uint64_t seed);

// Compares element-wise: |got - want| <= tol[i] (or tol[0] when tol has one entry). Reports
// the number of failures and the worst few, prefixed by `what`.
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& tol, const std::string& what);
// Elements per activation scale when a backend multiplies `dtype` weights with activations
// quantised to 8 bits, as the CPU backend does: 32 for the 32-element types, 256 (one Q8_K
// block) for the K types, 0 for float weights.
int64_t activation_block(DType dtype);

// Tolerance of each y[t, r] = sum_c w[r, c] x[t, c] (row-major w [rows, cols], x [n, cols]),
// where activations may be quantised per `act_block` elements (0: never). See conformance.cpp.
std::vector<double> matmul_tolerance(const std::vector<float>& w, const std::vector<float>& x,
                                     int64_t rows, int64_t cols, int64_t n, int64_t act_block);

// Tolerance abs + rel * |want| for every element.
std::vector<double> tolerance(const std::vector<double>& want, double abs, double rel);

}  // namespace torchless::conformance
