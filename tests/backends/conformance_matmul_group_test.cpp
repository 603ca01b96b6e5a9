// Conformance of matmul_group (several weights that read one x, as q/k/v and gate/up): each
// output against float64 over the exactly dequantised weights, and equal to what matmul_vec or
// matmul gives for its weight alone (CUDA runs a group as one launch over all its rows).
#include <array>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/core/error.h"

namespace torchless::conformance {
namespace {

// Rows per target: not multiples of a kernel's rows per warp or per block, so one warp's rows
// and one thread block's rows span two matrices.
constexpr std::array<int64_t, 3> kGroupRows = {33, 7, 42};

// Whole blocks of every weight type, more than one CUDA chunk of 64 units and not a multiple.
int64_t group_cols(DType dtype) {
  return dtype_block_size(dtype) == 256 ? 2304 : 2144;
}

class ConformanceMatmulGroup : public BackendTest {
 protected:
  // One target per entry of `types` (a weight of that type, kGroupRows rows) over n tokens of x
  // (n 1: x one-dimensional, as matmul_vec takes it).
  void check_group(std::span<const DType> types, int64_t n) {
    const int64_t cols = group_cols(types[0]);
    const size_t count = types.size();
    const uint64_t seed = 1700 + 31 * static_cast<uint64_t>(types[0]) + 7 * count + n;
    const std::string what = fmt::format("{} group of {} targets ({} first), {} token(s), seed {}",
                                         backend().name(), count, dtype_name(types[0]), n, seed);
    SCOPED_TRACE(what);
    const std::vector<float> xh = random_floats(static_cast<size_t>(n * cols), seed, -2, 2);
    const Tensor x =
        n == 1 ? upload_f32(backend(), xh, Shape{cols}) : upload_f32(backend(), xh, Shape{n, cols});
    std::vector<Weights> ws;
    std::vector<Tensor> ys, alone;
    for (size_t i = 0; i < count; ++i) {
      const int64_t rows = kGroupRows[i];
      ws.push_back(make_weights(backend(), types[i], rows, cols, seed + 1 + i));
      const Shape shape = n == 1 ? Shape{rows} : Shape{n, rows};
      ys.push_back(backend().alloc(shape, DType::F32));
      alone.push_back(backend().alloc(shape, DType::F32));
    }
    std::vector<Backend::MatmulTarget> targets;
    for (size_t i = 0; i < count; ++i) targets.push_back({&ws[i].tensor, &ys[i]});
    backend().matmul_group(x, targets);
    for (size_t i = 0; i < count; ++i) {
      if (n == 1) {
        backend().matmul_vec(ws[i].tensor, x, alone[i]);
      } else {
        backend().matmul(ws[i].tensor, x, alone[i]);
      }
    }
    for (size_t i = 0; i < count; ++i) {
      const int64_t rows = kGroupRows[i];
      const std::vector<float> got = backend().to_host_f32(ys[i]);
      const auto want = reference::matmul(ws[i].values, xh, rows, cols, n);
      expect_close(got, want,
                   matmul_tolerance(ws[i].values, xh, rows, cols, n, activation_block(types[i]),
                                    matmul_product_rounding(backend().name(), types[i], n)),
                   fmt::format("{}, target {} ({})", what, i, dtype_name(types[i])));
      EXPECT_EQ(got, backend().to_host_f32(alone[i])) << "target " << i << " alone";
    }
  }
};

TEST_P(ConformanceMatmulGroup, EveryWeightTypeMatchesReferenceAndSingleMatmuls) {
  for (DType t : weight_types(backend())) {
    for (size_t count = 1; count <= kGroupRows.size(); ++count) {
      const std::vector<DType> types(count, t);
      check_group(types, 1);
    }
    const std::vector<DType> three(3, t);
    check_group(three, 3);
  }
}

// A Q4_K_M-like q/k/v: the middle weight has another type, so a backend that fuses by type
// runs the first and last together and the middle one on its own.
TEST_P(ConformanceMatmulGroup, MixedWeightTypes) {
  for (const auto& types : {std::array{DType::Q4_K, DType::Q6_K, DType::Q4_K},
                            std::array{DType::Q4_0, DType::F16, DType::Q8_0}}) {
    bool supported = true;
    for (DType t : types) supported = supported && backend().supports_weight_dtype(t);
    if (!supported) continue;
    for (int64_t n : {1, 2}) check_group(types, n);
  }
}

TEST_P(ConformanceMatmulGroup, InvalidOperandsThrow) {
  const Weights w1 = make_weights(backend(), DType::Q8_0, 8, 64, 1790);
  const Weights w2 = make_weights(backend(), DType::Q8_0, 8, 32, 1791);
  const Tensor x = upload_f32(backend(), random_floats(64, 1792), Shape{64});
  // Four rows of 4: outputs of 8 values each, y2 overlapping y1 by one row.
  const Tensor y = backend().alloc(Shape{4, 4}, DType::F32);
  Tensor y1 = y.slice_rows(0, 2), y2 = y.slice_rows(1, 2), y3 = y.slice_rows(2, 2);
  const std::array<Backend::MatmulTarget, 2> overlapping = {{{&w1.tensor, &y1}, {&w1.tensor, &y2}}};
  EXPECT_THROW(backend().matmul_group(x, overlapping), Error);
  const std::array<Backend::MatmulTarget, 2> narrow = {{{&w1.tensor, &y1}, {&w2.tensor, &y3}}};
  EXPECT_THROW(backend().matmul_group(x, narrow), Error);
  const std::array<Backend::MatmulTarget, 2> fine = {{{&w1.tensor, &y1}, {&w1.tensor, &y3}}};
  EXPECT_NO_THROW(backend().matmul_group(x, fine));
  // The weights and input must outlive the queued work (Metal's command buffer, CUDA's stream).
  backend().synchronize();
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceMatmulGroup, ::testing::ValuesIn(kBackends),
                         backend_test_name);

}  // namespace
}  // namespace torchless::conformance
