// Conformance of the attention ops (fused prefill/decode attention and the decode primitives
// attention_scores and weighted_sum) over F32, F16 and Q8_0 KV caches, with GQA and sliding
// windows. The reference reads the cache as stored (rounded to F16, or the dequantised Q8_0
// blocks), so every cache type meets the same tolerance.
#include <cmath>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless::conformance {
namespace {

reference::Attention reference_of(const AttentionParams& p) {
  return {p.n_tokens,
          p.pos0,
          p.n_heads,
          p.n_kv_heads,
          p.head_dim,
          p.window,
          static_cast<double>(p.scale)};
}

std::string describe(const AttentionCase& c, DType kv, uint64_t seed) {
  return fmt::format("heads {}/{} dim {} tokens {} pos0 {} window {} kv {} seed {}", c.n_heads,
                     c.n_kv_heads, c.head_dim, c.n_tokens, c.pos0, c.window, dtype_name(kv), seed);
}

class ConformanceAttention : public BackendTest {};

TEST_P(ConformanceAttention, FusedAttentionMatchesReference) {
  for (const AttentionCase& c : sizes().attention) {
    for (DType kv : kv_types(backend(), c)) {
      const uint64_t seed = 2000 + static_cast<uint64_t>(c.pos0 * 13 + c.n_tokens * 7 + c.head_dim);
      const std::string what = describe(c, kv, seed);
      const AttentionParams p = params_of(c);
      const int64_t width = static_cast<int64_t>(c.n_heads) * c.head_dim;
      const int64_t kv_width = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
      const int64_t rows = c.pos0 + c.n_tokens;
      const auto q = random_floats(static_cast<size_t>(c.n_tokens * width), seed);
      const Cache k = make_cache(backend(), kv, rows, kv_width, seed + 1);
      const Cache v = make_cache(backend(), kv, rows, kv_width, seed + 2);
      Tensor out = backend().alloc(Shape{c.n_tokens, width}, DType::F32);
      backend().attention(upload_f32(backend(), q, Shape{c.n_tokens, width}), k.tensor, v.tensor,
                          out, p);
      const auto want = reference::attention(q, k.values, v.values, reference_of(p));
      expect_close(backend().to_host_f32(out), want, {kAttentionAbs}, what);
    }
  }
}

TEST_P(ConformanceAttention, DecodePrimitivesMatchReference) {
  for (const AttentionCase& c : sizes().attention) {
    if (c.n_tokens != 1) continue;
    for (DType kv : kv_types(backend(), c)) {
      const uint64_t seed = 3000 + static_cast<uint64_t>(c.pos0 * 13 + c.head_dim);
      const std::string what = describe(c, kv, seed);
      const AttentionParams p = params_of(c);
      const int64_t width = static_cast<int64_t>(c.n_heads) * c.head_dim;
      const int64_t kv_width = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
      const int64_t len = c.pos0 + 1;
      const auto q = random_floats(static_cast<size_t>(width), seed);
      const Cache k = make_cache(backend(), kv, len, kv_width, seed + 1);
      const Cache v = make_cache(backend(), kv, len, kv_width, seed + 2);

      Tensor scores = backend().alloc(Shape{c.n_heads, len}, DType::F32);
      backend().attention_scores(upload_f32(backend(), q, Shape{width}), k.tensor, scores, p);
      const auto want_scores = reference::attention_scores(q, k.values, reference_of(p));
      expect_close(backend().to_host_f32(scores), want_scores, tolerance(want_scores, 1e-5, 1e-5),
                   what + " scores");

      // weighted_sum on given probabilities (zero outside the window, as softmax leaves them).
      std::vector<float> probs(want_scores.size());
      const auto normalised =
          reference::softmax(std::vector<float>(want_scores.begin(), want_scores.end()), len);
      for (size_t i = 0; i < probs.size(); ++i) probs[i] = static_cast<float>(normalised[i]);
      Tensor out = backend().alloc(Shape{width}, DType::F32);
      backend().weighted_sum(upload_f32(backend(), probs, Shape{c.n_heads, len}), v.tensor, out, p);
      const auto want_out = reference::weighted_sum(probs, v.values, reference_of(p));
      expect_close(backend().to_host_f32(out), want_out, {kAttentionAbs}, what + " weighted_sum");
    }
  }
}

TEST_P(ConformanceAttention, InvalidParametersThrow) {
  AttentionParams p = params_of({6, 4, 8, 1, 2, 0});  // 6 heads over 4 KV heads
  Tensor q = backend().alloc(Shape{1, 48}, DType::F32);
  Tensor k = backend().alloc(Shape{8, 32}, DType::F32);
  Tensor out = backend().alloc(Shape{1, 48}, DType::F32);
  EXPECT_THROW(backend().attention(q, k, k, out, p), Error);
  p = params_of({4, 4, 8, 1, 8, 0});  // pos0 8 needs 9 cache rows
  EXPECT_THROW(backend().attention(q, k, k, out, p), Error);
  Tensor bad_cache = backend().alloc(Shape{16, 32}, DType::BF16);
  p = params_of({4, 4, 8, 1, 2, 0});
  Tensor q4 = backend().alloc(Shape{1, 32}, DType::F32);
  Tensor out4 = backend().alloc(Shape{1, 32}, DType::F32);
  EXPECT_THROW(backend().attention(q4, bad_cache, bad_cache, out4, p), Error);
  // Q8_0 blocks of 32 would straddle heads of 16.
  Tensor q8_cache = backend().alloc(Shape{16, 64}, DType::Q8_0);
  p = params_of({4, 4, 16, 1, 2, 0});
  Tensor q64 = backend().alloc(Shape{1, 64}, DType::F32);
  Tensor out64 = backend().alloc(Shape{1, 64}, DType::F32);
  EXPECT_THROW(backend().attention(q64, q8_cache, q8_cache, out64, p), Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceAttention, ::testing::ValuesIn(kBackends),
                         backend_test_name);

}  // namespace
}  // namespace torchless::conformance
