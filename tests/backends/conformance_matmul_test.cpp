// Conformance of matmul_vec and matmul for every weight dtype, against float64 over the
// exactly dequantised weights.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/core/error.h"

namespace torchless::conformance {
namespace {

void check_matmul(Backend& backend, DType dtype, int64_t rows, int64_t cols, int64_t n) {
  const uint64_t seed = matmul_seed(dtype, rows, cols, n);
  const std::string what = fmt::format("{} {} W[{}, {}] x {} tokens (seed {})", backend.name(),
                                       dtype_name(dtype), rows, cols, n, seed);
  SCOPED_TRACE(what);
  const Weights w = make_weights(backend, dtype, rows, cols, seed);
  const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), seed + 1);
  std::vector<float> got;
  if (n == 1) {
    const Tensor xt = upload_f32(backend, x, Shape{cols});
    Tensor y = backend.alloc(Shape{rows}, DType::F32);
    backend.matmul_vec(w.tensor, xt, y);
    got = backend.to_host_f32(y);
  } else {
    const Tensor xt = upload_f32(backend, x, Shape{n, cols});
    Tensor y = backend.alloc(Shape{n, rows}, DType::F32);
    backend.matmul(w.tensor, xt, y);
    got = backend.to_host_f32(y);
  }
  const auto want = reference::matmul(w.values, x, rows, cols, n);
  expect_close(got, want,
               matmul_tolerance(w.values, x, rows, cols, n, activation_block(dtype),
                                matmul_product_rounding(backend.name(), dtype, n)),
               what);
}

class ConformanceMatmul : public BackendTest {};

TEST_P(ConformanceMatmul, RequiredWeightTypesAreSupported) {
  for (DType t : kRequiredWeightTypes) {
    EXPECT_TRUE(backend().supports_weight_dtype(t)) << dtype_name(t);
  }
}

TEST_P(ConformanceMatmul, MatmulVecMatchesReferenceForEveryWeightType) {
  for (DType t : weight_types(backend())) {
    for (const Shape2& s : shapes_for(t, sizes())) check_matmul(backend(), t, s.rows, s.cols, 1);
  }
}

TEST_P(ConformanceMatmul, BatchedMatmulMatchesReferenceForEveryWeightType) {
  for (DType t : weight_types(backend())) {
    const auto& shapes = shapes_for(t, sizes());
    for (int64_t n : sizes().batch_tokens) {
      // The second and third shapes: a few rows, and enough rows to span several row blocks.
      for (size_t i = 1; i < std::min<size_t>(shapes.size(), 3); ++i) {
        check_matmul(backend(), t, shapes[i].rows, shapes[i].cols, n);
      }
    }
  }
}

TEST_P(ConformanceMatmul, BatchedMatmulOfOneTokenEqualsMatmulVec) {
  const Weights w = make_weights(backend(), DType::Q8_0, 33, 96, 5);
  const std::vector<float> x = random_floats(96, 6);
  Tensor y1 = backend().alloc(Shape{33}, DType::F32);
  Tensor y2 = backend().alloc(Shape{1, 33}, DType::F32);
  backend().matmul_vec(w.tensor, upload_f32(backend(), x, Shape{96}), y1);
  backend().matmul(w.tensor, upload_f32(backend(), x, Shape{1, 96}), y2);
  EXPECT_EQ(backend().to_host_f32(y1), backend().to_host_f32(y2));
}

TEST_P(ConformanceMatmul, MismatchedShapesThrow) {
  const Weights w = make_weights(backend(), DType::F32, 8, 16, 7);
  Tensor x = backend().alloc(Shape{15}, DType::F32);
  Tensor y = backend().alloc(Shape{8}, DType::F32);
  EXPECT_THROW(backend().matmul_vec(w.tensor, x, y), Error);
  Tensor x2 = backend().alloc(Shape{16}, DType::F32);
  Tensor y2 = backend().alloc(Shape{9}, DType::F32);
  EXPECT_THROW(backend().matmul_vec(w.tensor, x2, y2), Error);
  Tensor xb = backend().alloc(Shape{3, 16}, DType::F32);
  Tensor yb = backend().alloc(Shape{2, 8}, DType::F32);
  EXPECT_THROW(backend().matmul(w.tensor, xb, yb), Error);
}

TEST_P(ConformanceMatmul, ConvenienceMatmulVecReturnsTheProduct) {
  const Weights w = make_weights(backend(), DType::F16, 7, 33, 11);
  const std::vector<float> x = random_floats(33, 12);
  const std::vector<float> got = backend().matmul_vec_host(w.tensor, std::span<const float>(x));
  const auto want = reference::matmul(w.values, x, 7, 33, 1);
  expect_close(got, want, matmul_tolerance(w.values, x, 7, 33, 1, 0), "convenience");
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceMatmul, ::testing::ValuesIn(kBackends),
                         backend_test_name);

}  // namespace
}  // namespace torchless::conformance
