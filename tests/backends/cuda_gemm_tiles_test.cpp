// The CUDA backend's batched matmul over quantised weights larger than one F16 tile
// (cuda_linear_gemm.cpp cuts them into equal tiles of at most 64 Mi elements): each tile's rows
// land in their place, against float64 over the exactly dequantised weights. The conformance
// suite's matrices fit one tile. Skips without a CUDA device (label `cuda`).
#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/core/error.h"

namespace torchless::conformance {
namespace {

TEST(GemmTiles, WeightsOfSeveralTilesMatchReference_cuda) {
  std::unique_ptr<Backend> backend;
  try {
    backend = init_backend("cuda");
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  // 16411 * 4096 elements: two tiles of 8206 and 8205 rows.
  const int64_t rows = 16411, cols = 4096, n = 17;
  const DType dtype = DType::Q8_0;
  const Weights w = make_weights(*backend, dtype, rows, cols, 41);
  const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), 42);
  Tensor y = backend->alloc(Shape{n, rows}, DType::F32);
  backend->matmul(w.tensor, upload_f32(*backend, x, Shape{n, cols}), y);
  const auto want = reference::matmul(w.values, x, rows, cols, n);
  expect_close(backend->to_host_f32(y), want,
               matmul_tolerance(w.values, x, rows, cols, n, activation_block(dtype),
                                matmul_product_rounding("cuda", dtype, n)),
               fmt::format("cuda q8_0 W[{}, {}] x {} tokens", rows, cols, n));
}

}  // namespace
}  // namespace torchless::conformance
