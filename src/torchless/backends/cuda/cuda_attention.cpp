// Attention ops of the CUDA backend over the kernels of cuda_ops.cu; operands were checked by
// Backend (op_checks.h).
#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_kernels.h"

namespace torchless {
namespace {

cuda::AttentionShape shape_of(const AttentionParams& p) {
  return {p.n_tokens, p.pos0, p.n_heads, p.n_kv_heads, p.head_dim, p.window, p.scale};
}

}  // namespace

void CudaBackend::attention_scores_impl(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                        const AttentionParams& p) {
  if (k_cache.dtype == DType::Q8_0) return q8_0_attention_scores(q, k_cache, scores, p);
  const float* qp = cuda::f32_ptr(q, "attention_scores", "q");
  float* sp = cuda::f32_ptr(scores, "attention_scores", "scores");
  cuda::attention_scores(qp, cuda::device_ptr(k_cache, "attention_scores", "k_cache"),
                         k_cache.dtype == DType::F16, sp, shape_of(p), stream_);
  cuda::check_launch("attention_scores");
}

void CudaBackend::weighted_sum_impl(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                                    const AttentionParams& p) {
  if (v_cache.dtype == DType::Q8_0) return q8_0_weighted_sum(scores, v_cache, out, p);
  const float* sp = cuda::f32_ptr(scores, "weighted_sum", "scores");
  float* op = cuda::f32_ptr(out, "weighted_sum", "out");
  cuda::weighted_sum(sp, cuda::device_ptr(v_cache, "weighted_sum", "v_cache"),
                     v_cache.dtype == DType::F16, op, shape_of(p), stream_);
  cuda::check_launch("weighted_sum");
}

void CudaBackend::attention_impl(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                 Tensor& out, const AttentionParams& p) {
  if (k_cache.dtype == DType::Q8_0) return q8_0_attention(q, k_cache, v_cache, out, p);
  const float* qp = cuda::f32_ptr(q, "attention", "q");
  float* op = cuda::f32_ptr(out, "attention", "out");
  if (!cuda::attention_head_dim_supported(p.head_dim)) {
    fail("attention: the cuda backend supports head_dim up to 256, got {}", p.head_dim);
  }
  cuda::attention(qp, cuda::device_ptr(k_cache, "attention", "k_cache"),
                  cuda::device_ptr(v_cache, "attention", "v_cache"), k_cache.dtype == DType::F16,
                  op, shape_of(p), stream_);
  cuda::check_launch("attention");
}

}  // namespace torchless
