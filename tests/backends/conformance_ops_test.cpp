// Conformance of the row-wise and elementwise ops, rope, embedding, kv_store and the memory
// conveniences, against float64 references.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless::conformance {
namespace {

class ConformanceOps : public BackendTest {};

TEST_P(ConformanceOps, RmsnormMatchesReference) {
  for (int64_t cols : sizes().row_lengths) {
    for (int64_t rows : {1, 3}) {
      const uint64_t seed = 100 + static_cast<uint64_t>(cols * 3 + rows);
      const std::string what = fmt::format("rmsnorm [{}, {}] seed {}", rows, cols, seed);
      const auto x = random_floats(static_cast<size_t>(rows * cols), seed, -3.0f, 3.0f);
      const auto w = random_floats(static_cast<size_t>(cols), seed + 1, 0.5f, 1.5f);
      const float eps = rows == 1 ? 1e-5f : 1e-6f;
      Tensor xt = upload_f32(backend(), x, Shape{rows, cols});
      Tensor y = backend().alloc(Shape{rows, cols}, DType::F32);
      const Tensor wt = upload_f32(backend(), w, Shape{cols});
      backend().rmsnorm(xt, wt, y, eps);
      const auto want = reference::rmsnorm(x, w, cols, eps);
      expect_close(backend().to_host_f32(y), want, tolerance(want, 1e-7, kRowRel), what);
      backend().rmsnorm(xt, wt, xt, eps);  // y aliasing x
      expect_close(backend().to_host_f32(xt), want, tolerance(want, 1e-7, kRowRel),
                   what + " in place");
    }
  }
}

TEST_P(ConformanceOps, SoftmaxMatchesReference) {
  for (int64_t cols : sizes().row_lengths) {
    const uint64_t seed = 200 + static_cast<uint64_t>(cols);
    const auto x = random_floats(static_cast<size_t>(2 * cols), seed, -8.0f, 8.0f);
    Tensor t = upload_f32(backend(), x, Shape{2, cols});
    backend().softmax(t);
    const auto want = reference::softmax(x, cols);
    expect_close(backend().to_host_f32(t), want, tolerance(want, 1e-8, kRowRel),
                 fmt::format("softmax [2, {}] seed {}", cols, seed));
  }
}

TEST_P(ConformanceOps, SoftmaxIsStableForLargeInputs) {
  for (float offset : {1000.0f, -1000.0f, 80.0f}) {
    auto x = random_floats(33, 300, -40.0f, 40.0f);
    for (float& v : x) v += offset;
    Tensor t = upload_f32(backend(), x, Shape{33});
    backend().softmax(t);
    const auto want = reference::softmax(x, 33);
    expect_close(backend().to_host_f32(t), want, tolerance(want, 1e-8, 1e-4),
                 fmt::format("softmax offset {}", offset));
  }
}

TEST_P(ConformanceOps, SoftmaxGivesZeroToMinusInfinity) {
  auto x = random_floats(7, 301);
  x[0] = x[3] = -std::numeric_limits<float>::infinity();
  Tensor t = upload_f32(backend(), x, Shape{7});
  backend().softmax(t);
  const auto want = reference::softmax(x, 7);
  const auto got = backend().to_host_f32(t);
  EXPECT_EQ(got[0], 0.0f);
  EXPECT_EQ(got[3], 0.0f);
  expect_close(got, want, tolerance(want, 1e-8, kRowRel), "softmax with -inf");
}

TEST_P(ConformanceOps, SiluMatchesReference) {
  for (int64_t n : sizes().row_lengths) {
    const uint64_t seed = 400 + static_cast<uint64_t>(n);
    auto x = random_floats(static_cast<size_t>(n), seed, -20.0f, 20.0f);
    if (n > 2) x[1] = -150.0f;  // exp(150) overflows float: the result must still be ~0
    Tensor t = upload_f32(backend(), x, Shape{n});
    backend().silu(t);
    const auto want = reference::silu(x);
    expect_close(backend().to_host_f32(t), want, tolerance(want, 1e-7, kRowRel),
                 fmt::format("silu [{}] seed {}", n, seed));
  }
}

TEST_P(ConformanceOps, FusedSiluMulMatchesReference) {
  for (int64_t n : sizes().row_lengths) {
    const uint64_t seed = 500 + static_cast<uint64_t>(n);
    const auto g = random_floats(static_cast<size_t>(3 * n), seed, -10.0f, 10.0f);
    const auto u = random_floats(static_cast<size_t>(3 * n), seed + 1, -2.0f, 2.0f);
    Tensor gt = upload_f32(backend(), g, Shape{3, n});
    const Tensor ut = upload_f32(backend(), u, Shape{3, n});
    Tensor out = backend().alloc(Shape{3, n}, DType::F32);
    backend().fused_silu_mul(gt, ut, out);
    const auto want = reference::silu_mul(g, u);
    const std::string what = fmt::format("silu_mul [3, {}] seed {}", n, seed);
    expect_close(backend().to_host_f32(out), want, tolerance(want, 1e-7, kRowRel), what);
    backend().fused_silu_mul(gt, ut, gt);  // out aliasing gate
    expect_close(backend().to_host_f32(gt), want, tolerance(want, 1e-7, kRowRel),
                 what + " in place");
  }
}

TEST_P(ConformanceOps, AddMatchesReferenceWithAndWithoutBroadcast) {
  for (int64_t cols : sizes().row_lengths) {
    const uint64_t seed = 600 + static_cast<uint64_t>(cols);
    const auto a = random_floats(static_cast<size_t>(5 * cols), seed);
    const auto b = random_floats(static_cast<size_t>(5 * cols), seed + 1);
    const auto bias = random_floats(static_cast<size_t>(cols), seed + 2);
    const Tensor at = upload_f32(backend(), a, Shape{5, cols});
    Tensor out = backend().alloc(Shape{5, cols}, DType::F32);
    // One float rounding of the exact sum: at most 2^-24 relative.
    backend().add(at, upload_f32(backend(), b, Shape{5, cols}), out);
    auto want = reference::add(a, b, cols);
    expect_close(backend().to_host_f32(out), want, tolerance(want, 1e-30, 1.2e-7),
                 fmt::format("add [5, {}] seed {}", cols, seed));
    backend().add(at, upload_f32(backend(), bias, Shape{cols}), out);
    want = reference::add(a, bias, cols);
    expect_close(backend().to_host_f32(out), want, tolerance(want, 1e-30, 1.2e-7),
                 fmt::format("add bias [5, {}] seed {}", cols, seed));
  }
  Tensor a = backend().alloc(Shape{5, 8}, DType::F32);
  Tensor bad = backend().alloc(Shape{7}, DType::F32);
  EXPECT_THROW(backend().add(a, bad, a), Error);
}

TEST_P(ConformanceOps, RopeMatchesReferenceInBothLayouts) {
  for (const RopeCase& c : sizes().rope) {
    for (bool neox : {false, true}) {
      const uint64_t seed = 700 + static_cast<uint64_t>(c.head_dim * 10 + c.pos0) + neox;
      const std::string what = fmt::format("rope heads {} dim {} tokens {} pos0 {} neox {} seed {}",
                                           c.n_heads, c.head_dim, c.n_tokens, c.pos0, neox, seed);
      const int64_t width = static_cast<int64_t>(c.n_heads) * c.head_dim;
      const auto x = random_floats(static_cast<size_t>(c.n_tokens * width), seed);
      const auto freq = rope_frequencies(c.head_dim, 10000.0);
      Tensor xt = upload_f32(backend(), x, Shape{c.n_tokens, width});
      RopeParams p{c.n_heads, c.head_dim, c.pos0, neox};
      backend().rope(xt, upload_f32(backend(), freq, Shape{c.head_dim / 2}), p);
      const auto want = reference::rope(x, freq, c.n_heads, c.head_dim, c.pos0, neox);
      expect_close(backend().to_host_f32(xt), want, {rope_tolerance(c)}, what);
    }
  }
}

TEST_P(ConformanceOps, EmbeddingDequantisesTheRequestedRows) {
  for (DType t : weight_types(backend())) {
    const int64_t dim = embedding_dim(t);
    const int64_t vocab = kEmbeddingVocab;
    const Weights table = make_weights(backend(), t, vocab, dim, 800 + static_cast<uint64_t>(t));
    const std::vector<int32_t> ids(std::begin(kEmbeddingIds), std::end(kEmbeddingIds));
    Tensor idt = backend().alloc(Shape{5}, DType::I32);
    backend().upload(std::as_bytes(std::span(ids)), idt);
    Tensor out = backend().alloc(Shape{5, dim}, DType::F32);
    backend().embedding(table.tensor, idt, out);
    std::vector<double> want;
    for (int32_t id : ids) {
      for (int64_t c = 0; c < dim; ++c)
        want.push_back(table.values[static_cast<size_t>(id * dim + c)]);
    }
    expect_close(backend().to_host_f32(out), want, tolerance(want, 1e-7, 1e-6),
                 fmt::format("embedding {}", dtype_name(t)));
  }
}

TEST_P(ConformanceOps, EmbeddingRejectsOutOfRangeIds) {
  const Weights table = make_weights(backend(), DType::F32, 4, 8, 900);
  for (int32_t bad : {4, -1}) {
    const std::vector<int32_t> ids = {1, bad};
    Tensor idt = backend().alloc(Shape{2}, DType::I32);
    backend().upload(std::as_bytes(std::span(ids)), idt);
    Tensor out = backend().alloc(Shape{2, 8}, DType::F32);
    EXPECT_THROW(backend().embedding(table.tensor, idt, out), Error) << bad;
  }
}

TEST_P(ConformanceOps, KvStoreWritesRowsInCacheDtype) {
  for (DType dtype : {DType::F32, DType::F16}) {
    const int64_t cols = 3 * 33;
    Tensor cache = backend().alloc(Shape{10, cols}, dtype);
    const auto first = random_floats(static_cast<size_t>(4 * cols), 1000, -300.0f, 300.0f);
    const auto second = random_floats(static_cast<size_t>(cols), 1001, -300.0f, 300.0f);
    backend().kv_store(upload_f32(backend(), first, Shape{4, cols}), cache, 2);
    backend().kv_store(upload_f32(backend(), second, Shape{1, cols}), cache, 9);
    const auto got = backend().to_host_f32(cache);
    auto stored = [&](float v) -> double {
      return dtype == DType::F16 ? fp16_to_fp32(fp32_to_fp16(v)) : v;  // round to nearest even
    };
    for (int64_t c = 0; c < 4 * cols; ++c) {
      ASSERT_EQ(got[static_cast<size_t>(2 * cols + c)], stored(first[static_cast<size_t>(c)]))
          << dtype_name(dtype) << " element " << c;
    }
    for (int64_t c = 0; c < cols; ++c) {
      ASSERT_EQ(got[static_cast<size_t>(9 * cols + c)], stored(second[static_cast<size_t>(c)]));
      ASSERT_EQ(got[static_cast<size_t>(c)], 0.0f);  // untouched rows keep alloc's zeros
    }
    EXPECT_THROW(backend().kv_store(upload_f32(backend(), first, Shape{4, cols}), cache, 7), Error);
  }
}

// Q8_0 rows: each block of 32 gets d = amax / 127 (stored as F16) and codes rint(x / d), so
// a stored value is within d / 2 of its source plus the F16 rounding of d times a code
// (<= 127 * d * 2^-11): 0.6 d bounds both. A block of zeros stays exactly zero.
TEST_P(ConformanceOps, KvStoreQuantisesRowsToQ8_0Blocks) {
  if (!backend().supports_kv_dtype(DType::Q8_0)) {
    GTEST_SKIP() << "backend " << GetParam() << " has no Q8_0 KV cache";
  }
  const int64_t cols = 3 * 32;  // three heads of 32
  Tensor cache = backend().alloc(Shape{6, cols}, DType::Q8_0);
  auto rows = random_floats(static_cast<size_t>(3 * cols), 1200, -5.0f, 5.0f);
  for (int64_t c = 0; c < 32; ++c) rows[static_cast<size_t>(cols + c)] = 0.0f;  // a zero block
  for (int64_t c = 64; c < 96; ++c) rows[static_cast<size_t>(c)] *= 1e-3f;      // a tiny block
  backend().kv_store(upload_f32(backend(), rows, Shape{3, cols}), cache, 2);
  const auto got = backend().to_host_f32(cache);
  for (int64_t b = 0; b < 3 * cols / 32; ++b) {
    double amax = 0.0;
    for (int64_t j = 0; j < 32; ++j) {
      amax = std::max(amax, std::fabs(static_cast<double>(rows[static_cast<size_t>(b * 32 + j)])));
    }
    for (int64_t j = 0; j < 32; ++j) {
      const auto i = static_cast<size_t>(b * 32 + j);
      ASSERT_NEAR(got[static_cast<size_t>(2 * cols) + i], rows[i], 0.6 * amax / 127.0)
          << "block " << b << " element " << j << " seed 1200";
    }
  }
  for (int64_t c = 0; c < 2 * cols; ++c) ASSERT_EQ(got[static_cast<size_t>(c)], 0.0f);
  EXPECT_THROW(backend().kv_store(upload_f32(backend(), rows, Shape{3, cols}), cache, 4), Error);
}

TEST_P(ConformanceOps, HostConveniencesRoundTrip) {
  auto x = random_floats(33, 1100, -5.0f, 5.0f);
  const auto want_softmax = reference::softmax(x, 33);
  auto s = x;
  backend().softmax_host(std::span<float>(s));
  expect_close(s, want_softmax, tolerance(want_softmax, 1e-8, kRowRel), "softmax_host");

  const auto w = random_floats(33, 1101);
  const auto want_norm = reference::rmsnorm(x, w, 33, 1e-5);
  backend().rmsnorm_host(std::span<float>(x), std::span<const float>(w), 1e-5f);
  expect_close(x, want_norm, tolerance(want_norm, 1e-7, kRowRel), "rmsnorm_host");

  const auto m = random_floats(12, 1102);
  const Tensor t = backend().to_device_2d(m, 3, 4);
  EXPECT_EQ(t.shape, (Shape{3, 4}));
  EXPECT_EQ(backend().to_host_f32(t), m);
  EXPECT_THROW(backend().to_device_2d(m, 5, 4), Error);

  const Weights h = make_weights(backend(), DType::F16, 3, 5, 1103);
  EXPECT_EQ(backend().to_host_f32(h.tensor), h.values);
}

// to_device of a tensor larger than GPU staging buffers (CUDA: two of 16 MiB), of a size that
// is no multiple of them; a backend that copies must have taken every byte when the call
// returns (the source is released right after).
TEST_P(ConformanceOps, ToDeviceCopiesLargeTensorsWhole) {
  const int64_t n = (int64_t{40} << 20) / 4 + 7;
  auto check = [&](const Tensor& tensor) {
    const auto got = backend().to_host_f32(tensor);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[static_cast<size_t>(i)], static_cast<float>(i % 4093)) << "element " << i;
    }
  };
  Tensor t;
  {
    std::vector<float> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = static_cast<float>(i % 4093);
    const auto* bytes = reinterpret_cast<const std::byte*>(values.data());
    t = backend().to_device({Shape{n}, DType::F32, bytes, values.size() * sizeof(float)});
    if (t.data() == bytes) return check(t);  // zero-copy (CPU): only while `values` lives
  }
  check(t);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceOps, ::testing::ValuesIn(kBackends),
                         backend_test_name);

}  // namespace
}  // namespace torchless::conformance
