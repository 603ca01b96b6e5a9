// The CPU matmul's tiling edges: register tiles of 4 rows x up to 4 tokens (2 on AVX2), 16-row
// groups of the Q4_0 VNNI kernel, token tiles, row blocks and thread chunks. Every token
// count from 1 to 70, rows that leave 1..3 rows after the last 4-row tile and span two row
// blocks, and columns that leave a tail after the last vector, against a float64 reference.
#include <gtest/gtest.h>

#include <cstdint>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/cpu_activations.h"
#include "backends/reference_ops.h"
#include "torchless/backends/cpu/cpu_backend.h"

namespace torchless {
namespace {

// y = x Wᵀ against reference::matmul over the exact weights and effective activations, within
// float accumulation error (1e-5 of the sum of |products|: conformance::matmul_tolerance).
void expect_matmul_matches(CpuBackend& backend, const conformance::Weights& w, DType wtype,
                           int64_t rows, int64_t cols, int64_t n, uint64_t seed) {
  const auto x = conformance::random_floats(static_cast<size_t>(n * cols), seed, -2.0f, 2.0f);
  const auto xe = cpu_effective_activations(x, wtype);
  Tensor y = backend.alloc(Shape{n, rows}, DType::F32);
  backend.matmul(w.tensor, conformance::upload_f32(backend, x, Shape{n, cols}), y);
  conformance::expect_close(backend.to_host_f32(y), reference::matmul(w.values, xe, rows, cols, n),
                            conformance::matmul_tolerance(w.values, xe, rows, cols, n, 0),
                            fmt::format("{} W[{}, {}] x {} tokens, {} threads (seed {})",
                                        dtype_name(wtype), rows, cols, n, backend.threads(), seed));
}

TEST(CpuMatmulTiling, EveryTokenCountMatchesFloat64AcrossTileEdges) {
  struct Case {
    DType dtype;
    int64_t rows, cols;
  };
  // 70 rows: one full block of 64 and a second of 6 (one 4-row tile and 2 single rows) for
  // these column counts; 77 columns leave a tail of 13 after 16-lane vectors (5 after 8).
  const Case cases[] = {{DType::F32, 70, 77},  {DType::F16, 70, 77},  {DType::BF16, 70, 77},
                        {DType::F16, 7, 160},  {DType::Q8_0, 70, 96}, {DType::Q4_0, 70, 96},
                        {DType::Q8_0, 5, 160}, {DType::Q4_0, 3, 64}};
  for (int threads : {1, 2}) {
    BackendOptions options;
    options.threads = threads;
    CpuBackend backend(options);
    for (const Case& c : cases) {
      const uint64_t wseed = static_cast<uint64_t>(c.dtype) * 101 + static_cast<uint64_t>(c.rows);
      const auto w = conformance::make_weights(backend, c.dtype, c.rows, c.cols, wseed);
      for (int64_t n = 1; n <= 70; ++n) {
        expect_matmul_matches(backend, w, c.dtype, c.rows, c.cols, n, wseed + 7 * n);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

// Columns from 1 to 40 cover the empty main loop, exact vector multiples and every tail, for
// the mat-vec (1 token), fewer tokens than a register tile (3) and 4-row tiles (9).
TEST(CpuMatmulTiling, ColumnTailsMatchFloat64) {
  CpuBackend backend;
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t cols = 1; cols <= 40; ++cols) {
      const uint64_t seed = static_cast<uint64_t>(t) * 1009 + static_cast<uint64_t>(cols);
      const auto w = conformance::make_weights(backend, t, 6, cols, seed);
      for (int64_t n : {1, 3, 9}) expect_matmul_matches(backend, w, t, 6, cols, n, seed + n);
    }
  }
}

}  // namespace
}  // namespace torchless
