// Row-wise and elementwise kernels through MetalBackend on the emulated device, at simdgroup
// widths 32 and 64, against float64 references at awkward sizes.
#include <algorithm>
#include <cmath>

#include "metal_test_support.h"

namespace torchless::metal_test {
namespace {

class MetalOpsTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override { backend_ = make_backend(GetParam()); }
  std::unique_ptr<MetalBackend> backend_;
};

TEST_P(MetalOpsTest, RmsNormMatchesFloat64) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 33}, {2, 1000}, {1, 4099}}) {
    const auto x = random_floats(static_cast<size_t>(rows * cols), 11, 3.0f);
    const auto w = random_floats(static_cast<size_t>(cols), 12);
    const Tensor xt = upload_f32(*backend_, x, Shape{rows, cols});
    const Tensor wt = upload_f32(*backend_, w, Shape{cols});
    Tensor y = backend_->alloc(Shape{rows, cols}, DType::F32);
    backend_->rmsnorm(xt, wt, y, 1e-5f);
    std::vector<double> expected(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
      const double inv = 1.0 / std::sqrt(ss / cols + 1e-5);
      for (int64_t c = 0; c < cols; ++c) expected[r * cols + c] = x[r * cols + c] * inv * w[c];
    }
    expect_near(backend_->to_host_f32(y), expected, 1e-5, fmt::format("rmsnorm {}x{}", rows, cols));
  }
}

TEST_P(MetalOpsTest, RmsNormInPlaceThroughConvenience) {
  auto x = random_floats(77, 13);
  const auto w = random_floats(77, 14);
  std::vector<double> expected(x.size());
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  for (size_t i = 0; i < x.size(); ++i) expected[i] = x[i] / std::sqrt(ss / 77 + 1e-6) * w[i];
  backend_->rmsnorm_host(std::span<float>(x), w, 1e-6f);
  expect_near(x, expected, 1e-5, "rmsnorm in place");
}

TEST_P(MetalOpsTest, SoftmaxIsStableForLargeInputs) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {4, 31}, {2, 1025}}) {
    auto x = random_floats(static_cast<size_t>(rows * cols), 21, 40.0f);
    for (float& v : x) v += 1000.0f;
    Tensor t = upload_f32(*backend_, x, Shape{rows, cols});
    backend_->softmax(t);
    std::vector<double> expected(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * cols;
      const double m = *std::max_element(row, row + cols);
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += std::exp(row[c] - m);
      for (int64_t c = 0; c < cols; ++c) expected[r * cols + c] = std::exp(row[c] - m) / sum;
    }
    expect_near(backend_->to_host_f32(t), expected, 1e-5, fmt::format("softmax {}x{}", rows, cols));
  }
}

TEST_P(MetalOpsTest, SiluAndFusedSiluMulMatchReference) {
  for (int64_t n : {1, 1000, 270001}) {
    const auto g = random_floats(static_cast<size_t>(n), 31, 6.0f);
    const auto u = random_floats(static_cast<size_t>(n), 32, 2.0f);
    Tensor gt = upload_f32(*backend_, g, Shape{n});
    const Tensor ut = upload_f32(*backend_, u, Shape{n});
    Tensor out = backend_->alloc(Shape{n}, DType::F32);
    backend_->fused_silu_mul(gt, ut, out);
    backend_->silu(gt);
    std::vector<double> silu(g.size());
    std::vector<double> fused(g.size());
    for (size_t i = 0; i < g.size(); ++i) {
      silu[i] = g[i] / (1.0 + std::exp(-double(g[i])));
      fused[i] = silu[i] * u[i];
    }
    expect_near(backend_->to_host_f32(gt), silu, 1e-5, fmt::format("silu {}", n));
    expect_near(backend_->to_host_f32(out), fused, 1e-5, fmt::format("fused_silu_mul {}", n));
  }
}

TEST_P(MetalOpsTest, AddBroadcastsABiasRow) {
  const int64_t rows = 7, cols = 45;
  const auto a = random_floats(rows * cols, 41);
  const auto b = random_floats(rows * cols, 42);
  const auto bias = random_floats(cols, 43);
  const Tensor at = upload_f32(*backend_, a, Shape{rows, cols});
  const Tensor bt = upload_f32(*backend_, b, Shape{rows, cols});
  const Tensor biast = upload_f32(*backend_, bias, Shape{cols});
  Tensor sum = backend_->alloc(Shape{rows, cols}, DType::F32);
  Tensor biased = backend_->alloc(Shape{rows, cols}, DType::F32);
  backend_->add(at, bt, sum);
  backend_->add(at, biast, biased);
  std::vector<double> e1(a.size()), e2(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    e1[i] = double(a[i]) + b[i];
    e2[i] = double(a[i]) + bias[i % cols];
  }
  expect_near(backend_->to_host_f32(sum), e1, 1e-6, "add");
  expect_near(backend_->to_host_f32(biased), e2, 1e-6, "add bias");
}

TEST_P(MetalOpsTest, RopeRotatesNormalAndNeoxPairs) {
  for (bool neox : {false, true}) {
    for (int head_dim : {6, 64}) {
      const int n_tokens = 3, n_heads = 5, pos0 = 7;
      const auto x = random_floats(size_t(n_tokens * n_heads * head_dim), 51);
      std::vector<float> inv_freq(size_t(head_dim / 2));
      for (int i = 0; i < head_dim / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / head_dim);
      Tensor xt = upload_f32(*backend_, x, Shape{n_tokens, n_heads * head_dim});
      const Tensor ft = upload_f32(*backend_, inv_freq, Shape{head_dim / 2});
      backend_->rope(xt, ft, RopeParams{n_heads, head_dim, pos0, neox});
      std::vector<double> expected(x.begin(), x.end());
      for (int t = 0; t < n_tokens; ++t) {
        for (int h = 0; h < n_heads; ++h) {
          const size_t base = size_t((t * n_heads + h) * head_dim);
          for (int i = 0; i < head_dim / 2; ++i) {
            const double theta = double(pos0 + t) * inv_freq[i];
            const size_t a = base + size_t(neox ? i : 2 * i);
            const size_t b = base + size_t(neox ? i + head_dim / 2 : 2 * i + 1);
            expected[a] = x[a] * std::cos(theta) - x[b] * std::sin(theta);
            expected[b] = x[a] * std::sin(theta) + x[b] * std::cos(theta);
          }
        }
      }
      expect_near(backend_->to_host_f32(xt), expected, 1e-5,
                  fmt::format("rope neox={} head_dim={}", neox, head_dim));
    }
  }
}

TEST_P(MetalOpsTest, EmbeddingDequantisesEveryTableType) {
  const int64_t rows = 37, cols = 512;
  const auto table = random_floats(rows * cols, 61);
  const std::vector<int32_t> ids = {5, 0, 36, 5, 17};
  for (DType dtype :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const auto bytes = encode(table, rows, cols, dtype);
    const auto expected_table = decode(bytes, rows, cols, dtype);
    const Tensor tt = upload_bytes(*backend_, bytes, Shape{rows, cols}, dtype);
    Tensor idt = backend_->alloc(Shape{int64_t(ids.size())}, DType::I32);
    backend_->upload(std::as_bytes(std::span(ids)), idt);
    Tensor out = backend_->alloc(Shape{int64_t(ids.size()), cols}, DType::F32);
    backend_->embedding(tt, idt, out);
    std::vector<double> expected;
    for (int32_t id : ids) {
      expected.insert(expected.end(), expected_table.begin() + id * cols,
                      expected_table.begin() + (id + 1) * cols);
    }
    expect_near(backend_->to_host_f32(out), expected, 1e-6, "embedding " + dtype_label(dtype));
  }
}

TEST_P(MetalOpsTest, KvStoreWritesRowsAtPosition) {
  const int64_t n_ctx = 11, cols = 24, n = 3, pos0 = 6;
  const auto src = random_floats(n * cols, 71);
  for (DType dtype : {DType::F32, DType::F16}) {
    Tensor cache = backend_->alloc(Shape{n_ctx, cols}, dtype);
    const Tensor st = upload_f32(*backend_, src, Shape{n, cols});
    backend_->kv_store(st, cache, int(pos0));
    const auto all = backend_->to_host_f32(cache);
    std::vector<double> expected(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      expected[i] = dtype == DType::F16 ? fp16_to_fp32(fp32_to_fp16(src[i])) : src[i];
    }
    const std::span<const float> rows(all.data() + pos0 * cols, size_t(n * cols));
    expect_near(rows, expected, 0.0, "kv_store " + dtype_label(dtype));
  }
}

INSTANTIATE_TEST_SUITE_P(SimdWidths, MetalOpsTest, ::testing::Values(32u, 64u),
                         [](const auto& info) { return "simd" + std::to_string(info.param); });

}  // namespace
}  // namespace torchless::metal_test
