// The CPU matmul's tiling edges: register tiles of 4 rows x up to 4 tokens (2 on AVX2), 16-row
// groups of the Q4_0 VNNI kernel, token tiles, row blocks and thread chunks. Every token
// count from 1 to 70, rows that leave 1..3 rows after the last 4-row tile and span two row
// blocks, and columns that leave a tail after the last vector, against a float64 reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "torchless/backends/cpu/cpu_backend.h"

namespace torchless {
namespace {

// The activations the kernels multiply with: unchanged for float weights; for Q8_0/Q4_0
// weights quantised per block of 32 to amax / 127 steps, as the CPU backend documents.
std::vector<float> effective_activations(const std::vector<float>& x, DType wtype) {
  if (!dtype_is_quantized(wtype)) return x;
  std::vector<float> xq(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    for (size_t i = b; i < b + 32; ++i) xq[i] = std::nearbyint(x[i] * id) * d;
  }
  return xq;
}

// y[t, r] against a float64 sum over the exact weights and effective activations, within
// float accumulation error (1e-5 of the sum of |products|).
void expect_matmul_matches(CpuBackend& backend, const conformance::Weights& w, DType wtype,
                           int64_t rows, int64_t cols, int64_t n, uint64_t seed) {
  const auto x = conformance::random_floats(static_cast<size_t>(n * cols), seed, -2.0f, 2.0f);
  const auto xe = effective_activations(x, wtype);
  Tensor y = backend.alloc(Shape{n, rows}, DType::F32);
  backend.matmul(w.tensor, conformance::upload_f32(backend, x, Shape{n, cols}), y);
  const auto got = backend.to_host_f32(y);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double want = 0, scale = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double p = static_cast<double>(w.values[static_cast<size_t>(r * cols + c)]) *
                         xe[static_cast<size_t>(t * cols + c)];
        want += p;
        scale += std::fabs(p);
      }
      ASSERT_NEAR(got[static_cast<size_t>(t * rows + r)], want, 1e-5 * scale + 1e-30)
          << fmt::format("{} W[{}, {}] x {} tokens, {} threads (seed {}): token {} row {}",
                         dtype_name(wtype), rows, cols, n, backend.threads(), seed, t, r);
    }
  }
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
