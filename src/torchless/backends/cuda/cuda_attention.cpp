// Attention ops of the CUDA backend: argument checks as the CPU backend's, then the kernels of
// cuda_ops.cu.
#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_kernels.h"

namespace torchless {
namespace {

void check_params(const AttentionParams& p, std::string_view op) {
  if (p.n_heads <= 0 || p.n_kv_heads <= 0 || p.head_dim <= 0 || p.n_heads % p.n_kv_heads != 0) {
    fail("{}: invalid heads: n_heads {}, n_kv_heads {} (must divide n_heads), head_dim {}", op,
         p.n_heads, p.n_kv_heads, p.head_dim);
  }
  if (p.n_tokens < 1 || p.pos0 < 0 || p.window < 0) {
    fail("{}: invalid n_tokens {}, pos0 {} or window {}", op, p.n_tokens, p.pos0, p.window);
  }
}

void check_cache(const Tensor& cache, const AttentionParams& p, std::string_view op,
                 std::string_view what) {
  cuda::check_kv_cache(cache, op, what);
  const int64_t width = static_cast<int64_t>(p.n_kv_heads) * p.head_dim;
  if (cache.cols() != width || cache.rows() < p.pos0 + p.n_tokens) {
    fail("{}: {} has shape {}, expected at least {} rows of n_kv_heads * head_dim = {}", op, what,
         cache.shape.str(), p.pos0 + p.n_tokens, width);
  }
}

void check_scores(const Tensor& scores, const AttentionParams& p, std::string_view op) {
  const int64_t len = p.pos0 + 1;
  if (scores.cols() != len) {
    fail("{}: scores has shape {}, expected [{}, {}]", op, scores.shape.str(), p.n_heads, len);
  }
  cuda::check_numel(scores, p.n_heads * len, op, "scores");
}

cuda::AttentionShape shape_of(const AttentionParams& p) {
  return {p.n_tokens, p.pos0, p.n_heads, p.n_kv_heads, p.head_dim, p.window, p.scale};
}

}  // namespace

void CudaBackend::attention_scores(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                   const AttentionParams& p) {
  check_params(p, "attention_scores");
  if (p.n_tokens != 1) fail("attention_scores: n_tokens must be 1, got {}", p.n_tokens);
  const float* qp = cuda::f32_ptr(q, "attention_scores", "q");
  float* sp = cuda::f32_ptr(scores, "attention_scores", "scores");
  check_cache(k_cache, p, "attention_scores", "k_cache");
  cuda::check_numel(q, static_cast<int64_t>(p.n_heads) * p.head_dim, "attention_scores", "q");
  check_scores(scores, p, "attention_scores");
  cuda::attention_scores(qp, cuda::device_ptr(k_cache, "attention_scores", "k_cache"),
                         k_cache.dtype == DType::F16, sp, shape_of(p), stream_);
  cuda::check_launch("attention_scores");
}

void CudaBackend::weighted_sum(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                               const AttentionParams& p) {
  check_params(p, "weighted_sum");
  if (p.n_tokens != 1) fail("weighted_sum: n_tokens must be 1, got {}", p.n_tokens);
  const float* sp = cuda::f32_ptr(scores, "weighted_sum", "scores");
  float* op = cuda::f32_ptr(out, "weighted_sum", "out");
  check_cache(v_cache, p, "weighted_sum", "v_cache");
  check_scores(scores, p, "weighted_sum");
  cuda::check_numel(out, static_cast<int64_t>(p.n_heads) * p.head_dim, "weighted_sum", "out");
  cuda::weighted_sum(sp, cuda::device_ptr(v_cache, "weighted_sum", "v_cache"),
                     v_cache.dtype == DType::F16, op, shape_of(p), stream_);
  cuda::check_launch("weighted_sum");
}

void CudaBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            Tensor& out, const AttentionParams& p) {
  check_params(p, "attention");
  const float* qp = cuda::f32_ptr(q, "attention", "q");
  float* op = cuda::f32_ptr(out, "attention", "out");
  check_cache(k_cache, p, "attention", "k_cache");
  check_cache(v_cache, p, "attention", "v_cache");
  if (k_cache.dtype != v_cache.dtype) {
    fail("attention: k_cache is {} but v_cache is {}", dtype_name(k_cache.dtype),
         dtype_name(v_cache.dtype));
  }
  const int64_t width = static_cast<int64_t>(p.n_heads) * p.head_dim;
  cuda::check_numel(q, p.n_tokens * width, "attention", "q");
  cuda::check_numel(out, p.n_tokens * width, "attention", "out");
  if (op == qp) fail("attention: out must not alias q");
  if (!cuda::attention_head_dim_supported(p.head_dim)) {
    fail("attention: the cuda backend supports head_dim up to 256, got {}", p.head_dim);
  }
  cuda::attention(qp, cuda::device_ptr(k_cache, "attention", "k_cache"),
                  cuda::device_ptr(v_cache, "attention", "v_cache"), k_cache.dtype == DType::F16,
                  op, shape_of(p), stream_);
  cuda::check_launch("attention");
}

}  // namespace torchless
