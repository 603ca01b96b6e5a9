// Mat-vec (decode), batched mat-vec, the tiled mat-vec and the simdgroup-matrix GEMM, for
// every weight type, at simdgroup widths 32 and 64, against float64 over the stored weights.
#include "metal_test_support.h"

namespace torchless::metal_test {
namespace {

struct MatmulCase {
  int64_t rows;
  int64_t cols;
};

std::vector<double> reference(const std::vector<double>& w, const std::vector<float>& x,
                              int64_t rows, int64_t cols, int64_t n) {
  std::vector<double> y(static_cast<size_t>(n * rows));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) acc += w[r * cols + c] * x[t * cols + c];
      y[t * rows + r] = acc;
    }
  }
  return y;
}

class MetalMatmulTest : public ::testing::TestWithParam<std::tuple<uint32_t, DType>> {
 protected:
  void SetUp() override { backend_ = make_backend(std::get<0>(GetParam())); }
  DType dtype() const { return std::get<1>(GetParam()); }
  std::vector<MatmulCase> cases() const {
    if (dtype_block_size(dtype()) == 256) return {{1, 256}, {33, 768}};
    if (dtype_is_quantized(dtype())) return {{1, 32}, {33, 96}, {67, 1120}};
    return {{1, 1}, {5, 33}, {33, 96}, {67, 1001}};
  }
  // Checks y = W x for n tokens; n > 1 goes through matmul (GEMM from 8 tokens).
  void check(const MatmulCase& c, int64_t n, uint32_t seed) {
    const auto w = random_floats(static_cast<size_t>(c.rows * c.cols), seed);
    const auto x = random_floats(static_cast<size_t>(n * c.cols), seed + 1);
    const auto bytes = encode(w, c.rows, c.cols, dtype());
    const Tensor wt = upload_bytes(*backend_, bytes, Shape{c.rows, c.cols}, dtype());
    const Tensor xt = upload_f32(*backend_, x, Shape{n, c.cols});
    Tensor y = backend_->alloc(Shape{n, c.rows}, DType::F32);
    if (n == 1) {
      backend_->matmul_vec(wt, xt, y);
    } else {
      backend_->matmul(wt, xt, y);
    }
    const auto expected = reference(decode(bytes, c.rows, c.cols, dtype()), x, c.rows, c.cols, n);
    expect_near(backend_->to_host_f32(y), expected, 2e-5 * std::sqrt(double(c.cols)),
                fmt::format("{} {}x{} n={}", dtype_name(dtype()), c.rows, c.cols, n));
  }
  std::unique_ptr<MetalBackend> backend_;
};

TEST_P(MetalMatmulTest, MatmulVecMatchesFloat64) {
  uint32_t seed = 100;
  for (const MatmulCase& c : cases()) check(c, 1, seed += 7);
}

TEST_P(MetalMatmulTest, BatchedMatVecMatchesFloat64) {
  uint32_t seed = 200;
  for (const MatmulCase& c : cases()) check(c, 3, seed += 7);
}

TEST_P(MetalMatmulTest, GemmMatchesFloat64AtEdgeTiles) {
  uint32_t seed = 300;
  for (const MatmulCase& c : cases()) {
    check(c, 8, seed += 7);
    check(c, 37, seed += 7);
  }
}

INSTANTIATE_TEST_SUITE_P(
    WeightTypes, MetalMatmulTest,
    ::testing::Combine(::testing::Values(32u, 64u),
                       ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                         DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                         DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                         DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS)),
    [](const auto& info) {
      return "simd" + std::to_string(std::get<0>(info.param)) + "_" +
             std::string(dtype_name(std::get<1>(info.param)));
    });

class MetalTiledMatvecTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MetalTiledMatvecTest, TiledMatVecMatchesFloat64) {
  auto backend = make_backend(GetParam());
  for (MatmulCase c : {MatmulCase{1, 1}, {9, 1500}, {70, 2050}}) {
    const auto w = random_floats(static_cast<size_t>(c.rows * c.cols), 401);
    const auto x = random_floats(static_cast<size_t>(c.cols), 402);
    const Tensor wt = upload_f32(*backend, w, Shape{c.rows, c.cols});
    const Tensor xt = upload_f32(*backend, x, Shape{c.cols});
    Tensor y = backend->alloc(Shape{c.rows}, DType::F32);
    backend->matmul_vec_tiled(wt, xt, y);
    std::vector<double> wd(w.begin(), w.end());
    expect_near(backend->to_host_f32(y), reference(wd, x, c.rows, c.cols, 1),
                2e-5 * std::sqrt(double(c.cols)), fmt::format("tiled {}x{}", c.rows, c.cols));
  }
}

INSTANTIATE_TEST_SUITE_P(SimdWidths, MetalTiledMatvecTest, ::testing::Values(32u, 64u),
                         [](const auto& info) { return "simd" + std::to_string(info.param); });

}  // namespace
}  // namespace torchless::metal_test
