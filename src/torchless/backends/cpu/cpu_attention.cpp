// Attention ops of the CPU backend. The fused op is two-pass per (token, head): scores over the
// visible keys into per-thread scratch, softmax, then the weighted sum of values; heads are
// independent, so they spread over the pool. Query heads sharing a KV head (GQA) read the same
// cache rows, which stay in cache between them.
#include <algorithm>
#include <limits>

#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/backends/cpu/cpu_memory.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

// First key position visible from a query at position pos.
int64_t first_visible(int64_t pos, int window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

// Byte offset of KV head kvh inside a cache row.
size_t head_offset(const Tensor& cache, int kvh, int head_dim) {
  return dtype_row_bytes(cache.dtype, static_cast<int64_t>(kvh) * head_dim);
}

}  // namespace

// Operands of the ops below were checked by Backend (op_checks.h).

void CpuBackend::attention_scores_impl(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                       const AttentionParams& p) {
  const float* qp = cpu::host_f32(q);
  float* sp = cpu::host_f32(scores);
  const std::byte* kp = cpu::host_bytes(k_cache);
  const int64_t len = p.pos0 + 1;
  const int group = p.n_heads / p.n_kv_heads;
  const int64_t lo = first_visible(p.pos0, p.window);
  pool_.parallel_for(p.n_heads, 1, [&](int64_t h0, int64_t h1, int) {
    for (int64_t h = h0; h < h1; ++h) {
      float* row = sp + h * len;
      std::fill(row, row + lo, -std::numeric_limits<float>::infinity());
      const std::byte* k = kp + head_offset(k_cache, static_cast<int>(h) / group, p.head_dim);
      cpu::attention_scores_row(qp + h * p.head_dim, k, k_cache.row_bytes(), k_cache.dtype,
                                p.head_dim, lo, len, p.scale, row + lo);
    }
  });
}

void CpuBackend::weighted_sum_impl(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                                   const AttentionParams& p) {
  const float* sp = cpu::host_f32(scores);
  float* op = cpu::host_f32(out);
  const std::byte* vp = cpu::host_bytes(v_cache);
  const int64_t len = p.pos0 + 1;
  const int group = p.n_heads / p.n_kv_heads;
  pool_.parallel_for(p.n_heads, 1, [&](int64_t h0, int64_t h1, int) {
    for (int64_t h = h0; h < h1; ++h) {
      const std::byte* v = vp + head_offset(v_cache, static_cast<int>(h) / group, p.head_dim);
      cpu::weighted_sum_row(sp + h * len, v, v_cache.row_bytes(), v_cache.dtype, p.head_dim, 0, len,
                            op + h * p.head_dim);
    }
  });
}

void CpuBackend::attention_impl(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                Tensor& out, const AttentionParams& p) {
  const float* qp = cpu::host_f32(q);
  float* op = cpu::host_f32(out);
  const std::byte* kp = cpu::host_bytes(k_cache);
  const std::byte* vp = cpu::host_bytes(v_cache);
  const int64_t width = static_cast<int64_t>(p.n_heads) * p.head_dim;
  // Sized for the whole cache at once: growing with the position would reallocate every token.
  reserve_thread_scratch(static_cast<size_t>(std::max(k_cache.rows(), v_cache.rows())));
  const int group = p.n_heads / p.n_kv_heads;
  const int64_t tasks = static_cast<int64_t>(p.n_tokens) * p.n_heads;
  pool_.parallel_for(tasks, 1, [&](int64_t i0, int64_t i1, int thread) {
    float* scores = thread_scratch(thread);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / p.n_heads;
      const int h = static_cast<int>(i % p.n_heads);
      const int64_t pos = p.pos0 + t;
      const int64_t lo = first_visible(pos, p.window);
      const int64_t n = pos + 1 - lo;
      const int kvh = h / group;
      const float* qrow = qp + t * width + static_cast<int64_t>(h) * p.head_dim;
      cpu::attention_scores_row(qrow, kp + head_offset(k_cache, kvh, p.head_dim),
                                k_cache.row_bytes(), k_cache.dtype, p.head_dim, lo, pos + 1,
                                p.scale, scores);
      cpu::softmax_row(scores, n);
      // weighted_sum_row indexes weights from its first position, lo.
      cpu::weighted_sum_row(scores, vp + head_offset(v_cache, kvh, p.head_dim), v_cache.row_bytes(),
                            v_cache.dtype, p.head_dim, lo, pos + 1,
                            op + t * width + static_cast<int64_t>(h) * p.head_dim);
    }
  });
}

}  // namespace torchless
