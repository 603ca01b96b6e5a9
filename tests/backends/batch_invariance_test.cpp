// The invariant the continuous-batching engine relies on (docs/batching.md) on the GPU
// backends: each output of a matmul is reduced in one order whatever the batch, so row t of
// matmul(W, X) is bit for bit matmul_vec(W, X[t]) for every weight dtype, awkward widths and
// batch sizes around the kernels' tile sizes, with BackendOptions::batch_invariant. The CPU
// backend's invariance (every dtype, thread counts, instruction sets) is
// cpu_batch_invariance_test.cpp's.
#include <algorithm>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "torchless/core/error.h"

namespace torchless::conformance {
namespace {

class BatchInvariance : public ::testing::TestWithParam<std::string_view> {};

TEST_P(BatchInvariance, MatmulRowsEqualMatVecBitForBit) {
  const std::string_view name = GetParam();
  BackendOptions options;
  options.batch_invariant = true;
  std::unique_ptr<Backend> backend;
  try {
    backend = init_backend(name, options);
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  for (DType dtype :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    if (!backend->supports_weight_dtype(dtype)) continue;
    const int64_t block = activation_block(dtype) == 256 ? 256 : 32;
    for (int64_t cols : {int64_t{64}, int64_t{172}, int64_t{4 * 256}}) {
      if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16 && cols % block != 0) {
        continue;
      }
      for (int64_t rows : {int64_t{37}, int64_t{172}}) {
        const uint64_t seed = 900 + static_cast<uint64_t>(cols + rows);
        const Weights w = make_weights(*backend, dtype, rows, cols, seed);
        for (int64_t n : {2, 3, 5, 16, 70}) {
          const auto x =
              random_floats(static_cast<size_t>(n * cols), seed + static_cast<uint64_t>(n));
          Tensor y = backend->alloc(Shape{n, rows}, DType::F32);
          backend->matmul(w.tensor, upload_f32(*backend, x, Shape{n, cols}), y);
          const auto batched = backend->to_host_f32(y);
          for (int64_t t = 0; t < n; ++t) {
            const std::vector<float> xt(x.begin() + t * cols, x.begin() + (t + 1) * cols);
            const auto alone = backend->matmul_vec_host(w.tensor, xt);
            for (int64_t r = 0; r < rows; ++r) {
              ASSERT_EQ(alone[static_cast<size_t>(r)], batched[static_cast<size_t>(t * rows + r)])
                  << fmt::format("{} cols {} n {} token {} row {} seed {}", dtype_name(dtype), cols,
                                 n, t, r, seed);
            }
          }
        }
      }
    }
  }
}

std::string name_of(const ::testing::TestParamInfo<BatchInvariance::ParamType>& info) {
  std::string n(info.param);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

INSTANTIATE_TEST_SUITE_P(Metal, BatchInvariance, ::testing::Values("metal-emulated"), name_of);

}  // namespace
}  // namespace torchless::conformance
