// Attention ops of the CPU backend. The fused op is two-pass per (token, head): scores over the
// visible keys into per-thread scratch, softmax, then the weighted sum of values; heads are
// independent, so they spread over the pool. Query heads sharing a KV head (GQA) read the same
// cache rows, which stay in cache between them.
#include <algorithm>
#include <limits>

#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/backends/cpu/cpu_checks.h"
#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/quant.h"

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
  cpu::check_kv_cache(cache, op, what);
  if (cache.dtype == DType::Q8_0 && p.head_dim % kQK != 0) {
    fail("{}: a q8_0 {} needs head_dim a multiple of {}, got {}", op, what, kQK, p.head_dim);
  }
  const int64_t width = static_cast<int64_t>(p.n_kv_heads) * p.head_dim;
  if (cache.cols() != width || cache.rows() < p.pos0 + p.n_tokens) {
    fail("{}: {} has shape {}, expected at least {} rows of n_kv_heads * head_dim = {}", op, what,
         cache.shape.str(), p.pos0 + p.n_tokens, width);
  }
}

// First key position visible from a query at position pos.
int64_t first_visible(int64_t pos, int window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

// Byte offset of KV head kvh inside a cache row.
size_t head_offset(const Tensor& cache, int kvh, int head_dim) {
  return dtype_row_bytes(cache.dtype, static_cast<int64_t>(kvh) * head_dim);
}

}  // namespace

void CpuBackend::attention_scores(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                  const AttentionParams& p) {
  check_params(p, "attention_scores");
  if (p.n_tokens != 1) fail("attention_scores: n_tokens must be 1, got {}", p.n_tokens);
  const float* qp = cpu::f32_ptr(q, "attention_scores", "q");
  float* sp = cpu::f32_ptr(scores, "attention_scores", "scores");
  check_cache(k_cache, p, "attention_scores", "k_cache");
  cpu::check_numel(q, static_cast<int64_t>(p.n_heads) * p.head_dim, "attention_scores", "q");
  const int64_t len = p.pos0 + 1;
  if (scores.cols() != len) {
    fail("attention_scores: scores has shape {}, expected [{}, {}]", scores.shape.str(), p.n_heads,
         len);
  }
  cpu::check_numel(scores, p.n_heads * len, "attention_scores", "scores");
  const int group = p.n_heads / p.n_kv_heads;
  const int64_t lo = first_visible(p.pos0, p.window);
  pool_.parallel_for(p.n_heads, 1, [&](int64_t h0, int64_t h1, int) {
    for (int64_t h = h0; h < h1; ++h) {
      float* row = sp + h * len;
      std::fill(row, row + lo, -std::numeric_limits<float>::infinity());
      const std::byte* k =
          k_cache.data() + head_offset(k_cache, static_cast<int>(h) / group, p.head_dim);
      cpu::attention_scores_row(qp + h * p.head_dim, k, k_cache.row_bytes(), k_cache.dtype,
                                p.head_dim, lo, len, p.scale, row + lo);
    }
  });
}

void CpuBackend::weighted_sum(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                              const AttentionParams& p) {
  check_params(p, "weighted_sum");
  if (p.n_tokens != 1) fail("weighted_sum: n_tokens must be 1, got {}", p.n_tokens);
  const float* sp = cpu::f32_ptr(scores, "weighted_sum", "scores");
  float* op = cpu::f32_ptr(out, "weighted_sum", "out");
  check_cache(v_cache, p, "weighted_sum", "v_cache");
  const int64_t len = p.pos0 + 1;
  if (scores.cols() != len) {
    fail("weighted_sum: scores has shape {}, expected [{}, {}]", scores.shape.str(), p.n_heads,
         len);
  }
  cpu::check_numel(scores, p.n_heads * len, "weighted_sum", "scores");
  cpu::check_numel(out, static_cast<int64_t>(p.n_heads) * p.head_dim, "weighted_sum", "out");
  const int group = p.n_heads / p.n_kv_heads;
  pool_.parallel_for(p.n_heads, 1, [&](int64_t h0, int64_t h1, int) {
    for (int64_t h = h0; h < h1; ++h) {
      const std::byte* v =
          v_cache.data() + head_offset(v_cache, static_cast<int>(h) / group, p.head_dim);
      cpu::weighted_sum_row(sp + h * len, v, v_cache.row_bytes(), v_cache.dtype, p.head_dim, 0, len,
                            op + h * p.head_dim);
    }
  });
}

void CpuBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                           Tensor& out, const AttentionParams& p) {
  check_params(p, "attention");
  const float* qp = cpu::f32_ptr(q, "attention", "q");
  float* op = cpu::f32_ptr(out, "attention", "out");
  check_cache(k_cache, p, "attention", "k_cache");
  check_cache(v_cache, p, "attention", "v_cache");
  const int64_t width = static_cast<int64_t>(p.n_heads) * p.head_dim;
  cpu::check_numel(q, p.n_tokens * width, "attention", "q");
  cpu::check_numel(out, p.n_tokens * width, "attention", "out");
  if (out.data() == q.data()) fail("attention: out must not alias q");
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
      cpu::attention_scores_row(qrow, k_cache.data() + head_offset(k_cache, kvh, p.head_dim),
                                k_cache.row_bytes(), k_cache.dtype, p.head_dim, lo, pos + 1,
                                p.scale, scores);
      cpu::softmax_row(scores, n);
      // weighted_sum_row indexes weights from its first position, lo.
      cpu::weighted_sum_row(scores, v_cache.data() + head_offset(v_cache, kvh, p.head_dim),
                            v_cache.row_bytes(), v_cache.dtype, p.head_dim, lo, pos + 1,
                            op + t * width + static_cast<int64_t>(h) * p.head_dim);
    }
  });
}

}  // namespace torchless
