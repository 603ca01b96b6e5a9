// Attention on the emulated device: the spec's primitives (scores, softmax, weighted sum) and
// the fused flash-decoding kernel (split and unsplit, GQA, sliding window, F32/F16 caches,
// decode and causal prefill), against a float64 reference.
#include <algorithm>
#include <cmath>

#include "metal_test_support.h"

namespace torchless::metal_test {
namespace {

struct AttentionCase {
  int n_tokens;
  int pos0;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int window;
};

std::string label(const AttentionCase& c, DType cache) {
  return fmt::format("tokens {} pos0 {} heads {}/{} dim {} window {} cache {}", c.n_tokens, c.pos0,
                     c.n_heads, c.n_kv_heads, c.head_dim, c.window, dtype_name(cache));
}

// What the cache holds after kv_store: values rounded to the cache type.
std::vector<double> stored(const std::vector<float>& v, DType cache) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out[i] = cache == DType::F16 ? fp16_to_fp32(fp32_to_fp16(v[i])) : v[i];
  }
  return out;
}

std::vector<double> reference(const AttentionCase& c, const std::vector<float>& q,
                              const std::vector<double>& k, const std::vector<double>& v,
                              float scale) {
  const int kv_cols = c.n_kv_heads * c.head_dim;
  std::vector<double> out(q.size());
  for (int t = 0; t < c.n_tokens; ++t) {
    const int pos = c.pos0 + t;
    const int first = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
    for (int h = 0; h < c.n_heads; ++h) {
      const int kvh = h / (c.n_heads / c.n_kv_heads);
      const float* qh = q.data() + (t * c.n_heads + h) * c.head_dim;
      std::vector<double> s;
      for (int p = first; p <= pos; ++p) {
        double dot = 0;
        for (int d = 0; d < c.head_dim; ++d) dot += qh[d] * k[p * kv_cols + kvh * c.head_dim + d];
        s.push_back(dot * scale);
      }
      const double m = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - m));
      for (int d = 0; d < c.head_dim; ++d) {
        double acc = 0;
        for (int p = first; p <= pos; ++p)
          acc += s[p - first] * v[p * kv_cols + kvh * c.head_dim + d];
        out[(t * c.n_heads + h) * c.head_dim + d] = acc / sum;
      }
    }
  }
  return out;
}

class MetalAttentionTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override { backend_ = make_backend(GetParam()); }

  void run_case(const AttentionCase& c, DType cache_type, bool primitives) {
    const int n_ctx = c.pos0 + c.n_tokens + 3;
    const int kv_cols = c.n_kv_heads * c.head_dim;
    const float scale = 1.0f / std::sqrt(float(c.head_dim));
    const auto q = random_floats(size_t(c.n_tokens * c.n_heads * c.head_dim), 500 + c.pos0, 2.0f);
    const auto k = random_floats(size_t((c.pos0 + c.n_tokens) * kv_cols), 600 + c.pos0, 2.0f);
    const auto v = random_floats(size_t((c.pos0 + c.n_tokens) * kv_cols), 700 + c.pos0);
    Tensor kc = backend_->alloc(Shape{n_ctx, kv_cols}, cache_type);
    Tensor vc = backend_->alloc(Shape{n_ctx, kv_cols}, cache_type);
    backend_->kv_store(upload_f32(*backend_, k, Shape{c.pos0 + c.n_tokens, kv_cols}), kc, 0);
    backend_->kv_store(upload_f32(*backend_, v, Shape{c.pos0 + c.n_tokens, kv_cols}), vc, 0);
    const Tensor qt = upload_f32(*backend_, q, Shape{c.n_tokens, c.n_heads * c.head_dim});
    Tensor out = backend_->alloc(Shape{c.n_tokens, c.n_heads * c.head_dim}, DType::F32);
    const AttentionParams params{c.n_tokens, c.pos0,   c.n_heads, c.n_kv_heads,
                                 c.head_dim, c.window, scale};
    if (primitives) {
      Tensor scores = backend_->alloc(Shape{c.n_heads, c.pos0 + 1}, DType::F32);
      backend_->attention_scores(qt, kc, scores, params);
      backend_->softmax(scores);
      backend_->weighted_sum(scores, vc, out, params);
    } else {
      backend_->attention(qt, kc, vc, out, params);
    }
    const auto expected = reference(c, q, stored(k, cache_type), stored(v, cache_type), scale);
    expect_near(backend_->to_host_f32(out), expected, 2e-5,
                (primitives ? "primitives " : "fused ") + label(c, cache_type));
  }

  std::unique_ptr<MetalBackend> backend_;
};

TEST_P(MetalAttentionTest, PrimitivesMatchFloat64ForDecode) {
  for (DType cache : {DType::F32, DType::F16}) {
    run_case({1, 0, 4, 2, 40, 0}, cache, true);
    run_case({1, 70, 6, 2, 33, 0}, cache, true);
    run_case({1, 70, 4, 4, 16, 9}, cache, true);
  }
}

TEST_P(MetalAttentionTest, FusedDecodeMatchesFloat64) {
  for (DType cache : {DType::F32, DType::F16}) {
    run_case({1, 0, 4, 2, 40, 0}, cache, false);
    run_case({1, 100, 8, 2, 64, 0}, cache, false);   // unsplit
    run_case({1, 300, 6, 3, 40, 0}, cache, false);   // split, merged
    run_case({2, 300, 4, 1, 72, 50}, cache, false);  // split, sliding window
  }
}

TEST_P(MetalAttentionTest, FusedPrefillIsCausal) {
  run_case({5, 0, 4, 2, 24, 0}, DType::F32, false);
  run_case({19, 4, 4, 4, 8, 0}, DType::F32, false);
  run_case({17, 0, 2, 1, 16, 6}, DType::F16, false);
}

INSTANTIATE_TEST_SUITE_P(SimdWidths, MetalAttentionTest, ::testing::Values(32u, 64u),
                         [](const auto& info) { return "simd" + std::to_string(info.param); });

}  // namespace
}  // namespace torchless::metal_test
