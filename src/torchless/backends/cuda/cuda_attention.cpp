// Attention ops of the CUDA backend: the decode primitives over the kernels of cuda_ops.cu, the
// fused op over the flash kernels of cuda_flash_attention.cu (flash-decoding for one token, tiled
// flash attention for several); operands were checked by Backend (op_checks.h).
#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_flash_attention.h"
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
  if (!cuda::flash_head_dim_supported(p.head_dim)) {
    fail("attention: the cuda backend supports head_dim up to 256, got {}", p.head_dim);
  }
  if (!cuda::flash_decode_fits(p.n_heads, p.head_dim)) {
    fail("attention: the cuda backend supports n_heads * (head_dim + 2) up to {}, got {} * {}",
         cuda::kDecodePartialFloats, p.n_heads, p.head_dim + 2);
  }
  const void* kp = cuda::device_ptr(k_cache, "attention", "k_cache");
  const void* vp = cuda::device_ptr(v_cache, "attention", "v_cache");
  const bool f16 = k_cache.dtype == DType::F16;
  const cuda::AttentionShape s = shape_of(p);
  if (p.n_tokens == 1) {
    auto* partial = reinterpret_cast<float*>(decode_partials_->device_data());
    cuda::flash_decode(qp, kp, vp, f16, partial, op, s, stream_);
  } else {
    cuda::flash_attention(qp, kp, vp, f16, op, s, stream_);
  }
  cuda::check_launch("attention");
}

}  // namespace torchless
