// The CUDA backend's paged KV cache ops (continuous batching, docs/batching.md) and its
// attention over Q8_0 caches, on the kernels of cuda_kv_kernels.h. Shapes were checked above the
// backend (paged_checks.h, op_checks.h); the index tensors' values are read on the device.
#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_kv_kernels.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

const int32_t* i32_ptr(const Tensor& t, std::string_view op, std::string_view what) {
  return reinterpret_cast<const int32_t*>(cuda::device_ptr(t, op, what));
}

void require_head_dim(int head_dim, std::string_view op) {
  if (!cuda::kv_attention_head_dim_supported(head_dim)) {
    fail("{}: the cuda backend supports head_dim up to 256, got {}", op, head_dim);
  }
}

cuda::AttentionShape decode_shape(const AttentionParams& p) {
  return {p.n_tokens, p.pos0, p.n_heads, p.n_kv_heads, p.head_dim, p.window, p.scale};
}

}  // namespace

void CudaBackend::paged_kv_store_impl(const Tensor& src, Tensor& pool, const Tensor& slots) {
  const float* sp = cuda::f32_ptr(src, "paged_kv_store", "src");
  std::byte* pp = cuda::device_ptr(pool, "paged_kv_store", "pool");
  const int32_t* slot = i32_ptr(slots, "paged_kv_store", "slots");
  if (src.rows() == 0 || pool.cols() == 0) return;
  cuda::kv_store_rows(pool.dtype, sp, pp, slot, src.rows(), pool.cols(), 0, stream_);
  cuda::check_launch("paged_kv_store");
}

void CudaBackend::paged_attention_impl(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                       const Tensor& tokens, const Tensor& block_tables,
                                       Tensor& out, const PagedAttentionParams& p) {
  constexpr std::string_view op = "paged_attention";
  require_head_dim(p.head_dim, op);
  cuda::KvLayout layout;
  layout.tokens = i32_ptr(tokens, op, "tokens");
  layout.tables = i32_ptr(block_tables, op, "block_tables");
  layout.max_blocks = static_cast<int>(block_tables.cols());
  layout.block_size = p.block_size;
  const cuda::KvAttentionShape shape{p.n_tokens, p.n_heads, p.n_kv_heads,
                                     p.head_dim, p.window,  p.scale};
  cuda::kv_attention(k_pool.dtype, cuda::f32_ptr(q, op, "q"),
                     cuda::device_ptr(k_pool, op, "k_pool"), cuda::device_ptr(v_pool, op, "v_pool"),
                     cuda::f32_ptr(out, op, "out"), shape, layout, stream_);
  cuda::check_launch(op);
}

void CudaBackend::q8_0_kv_store(const Tensor& src, Tensor& cache, int pos0) {
  const float* sp = cuda::f32_ptr(src, "kv_store", "src");
  const int64_t n = src.numel() / cache.cols();  // whole rows (op_checks.h)
  if (n == 0) return;
  cuda::kv_store_rows(DType::Q8_0, sp, cuda::device_ptr(cache, "kv_store", "cache"), nullptr, n,
                      cache.cols(), pos0, stream_);
  cuda::check_launch("kv_store");
}

void CudaBackend::q8_0_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                 Tensor& out, const AttentionParams& p) {
  constexpr std::string_view op = "attention";
  require_head_dim(p.head_dim, op);
  cuda::KvLayout layout;
  layout.pos0 = p.pos0;
  const cuda::KvAttentionShape shape{p.n_tokens, p.n_heads, p.n_kv_heads,
                                     p.head_dim, p.window,  p.scale};
  cuda::kv_attention(DType::Q8_0, cuda::f32_ptr(q, op, "q"),
                     cuda::device_ptr(k_cache, op, "k_cache"),
                     cuda::device_ptr(v_cache, op, "v_cache"), cuda::f32_ptr(out, op, "out"), shape,
                     layout, stream_);
  cuda::check_launch(op);
}

void CudaBackend::q8_0_attention_scores(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                        const AttentionParams& p) {
  constexpr std::string_view op = "attention_scores";
  cuda::attention_scores_q8_0(cuda::f32_ptr(q, op, "q"), cuda::device_ptr(k_cache, op, "k_cache"),
                              cuda::f32_ptr(scores, op, "scores"), decode_shape(p), stream_);
  cuda::check_launch(op);
}

void CudaBackend::q8_0_weighted_sum(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                                    const AttentionParams& p) {
  constexpr std::string_view op = "weighted_sum";
  cuda::weighted_sum_q8_0(cuda::f32_ptr(scores, op, "scores"),
                          cuda::device_ptr(v_cache, op, "v_cache"), cuda::f32_ptr(out, op, "out"),
                          decode_shape(p), stream_);
  cuda::check_launch(op);
}

}  // namespace torchless
