// Backend's public ops: validate once (op_checks.h), then run the backend's implementation.
// Every backend therefore rejects the same calls with the same messages.
#include "torchless/backends/backend.h"
#include "torchless/backends/op_checks.h"
#include "torchless/backends/paged_checks.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

// After op_checks (which admits every KV type of some backend): this backend's own.
void require_kv_support(const Backend& backend, const Tensor& cache, const char* op) {
  if (!backend.supports_kv_dtype(cache.dtype)) {
    fail("{}: the {} backend has no {} KV cache; use f16 or f32", op, backend.name(),
         dtype_name(cache.dtype));
  }
}

// Backends without paged attention at all fail in their paged <op>_impl, naming that instead.
void require_paged_kv_support(const Backend& backend, const Tensor& pool, const char* op) {
  if (backend.supports_paged_attention() && !backend.supports_paged_kv_dtype(pool.dtype)) {
    fail("{}: the {} backend has no {} paged KV cache; use f16 or f32", op, backend.name(),
         dtype_name(pool.dtype));
  }
}

}  // namespace

void Backend::matmul_vec(const Tensor& w, const Tensor& x, Tensor& y) {
  op_checks::check_matmul_vec(*this, w, x, y);
  ++ops_issued_;
  matmul_vec_impl(w, x, y);
}

void Backend::matmul(const Tensor& w, const Tensor& x, Tensor& y) {
  op_checks::check_matmul(*this, w, x, y);
  ++ops_issued_;
  matmul_impl(w, x, y);
}

void Backend::matmul_group(const Tensor& x, std::span<const MatmulTarget> targets) {
  op_checks::check_matmul_group(*this, x, targets);
  ++ops_issued_;
  matmul_group_impl(x, targets);
}

void Backend::matmul_group_impl(const Tensor& x, std::span<const MatmulTarget> targets) {
  for (const MatmulTarget& t : targets) {
    if (x.shape.rank() == 1) {
      matmul_vec_impl(*t.w, x, *t.y);
    } else {
      matmul_impl(*t.w, x, *t.y);
    }
  }
}

void Backend::rmsnorm(const Tensor& x, const Tensor& weight, Tensor& y, float eps) {
  op_checks::check_rmsnorm(x, weight, y);
  ++ops_issued_;
  rmsnorm_impl(x, weight, y, eps);
}

void Backend::softmax(Tensor& x) {
  op_checks::check_softmax(x);
  ++ops_issued_;
  softmax_impl(x);
}

void Backend::silu(Tensor& x) {
  op_checks::check_silu(x);
  ++ops_issued_;
  silu_impl(x);
}

void Backend::fused_silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
  op_checks::check_fused_silu_mul(gate, up, out);
  ++ops_issued_;
  fused_silu_mul_impl(gate, up, out);
}

void Backend::add(const Tensor& a, const Tensor& b, Tensor& out) {
  op_checks::check_add(a, b, out);
  ++ops_issued_;
  add_impl(a, b, out);
}

void Backend::rope(Tensor& x, const Tensor& inv_freq, const RopeParams& params) {
  op_checks::check_rope(x, inv_freq, params);
  ++ops_issued_;
  rope_impl(x, inv_freq, params);
}

void Backend::embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  op_checks::check_embedding(*this, table, ids, out);
  if (table.layout != WeightLayout::Plain) fail("embedding: the table is a repacked weight matrix");
  if (host_readable(ids)) op_checks::require_token_ids(ids, table.rows(), "embedding");
  ++ops_issued_;
  embedding_impl(table, ids, out);
}

void Backend::kv_store(const Tensor& src, Tensor& cache, int pos0) {
  op_checks::check_kv_store(src, cache, pos0);
  require_kv_support(*this, cache, "kv_store");
  ++ops_issued_;
  kv_store_impl(src, cache, pos0);
}

void Backend::attention_scores(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                               const AttentionParams& params) {
  op_checks::check_attention_scores(q, k_cache, scores, params);
  require_kv_support(*this, k_cache, "attention_scores");
  ++ops_issued_;
  attention_scores_impl(q, k_cache, scores, params);
}

void Backend::weighted_sum(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                           const AttentionParams& params) {
  op_checks::check_weighted_sum(scores, v_cache, out, params);
  require_kv_support(*this, v_cache, "weighted_sum");
  ++ops_issued_;
  weighted_sum_impl(scores, v_cache, out, params);
}

void Backend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, Tensor& out,
                        const AttentionParams& params) {
  op_checks::check_attention(q, k_cache, v_cache, out, params);
  require_kv_support(*this, k_cache, "attention");
  ++ops_issued_;
  attention_impl(q, k_cache, v_cache, out, params);
}

void Backend::paged_kv_store(const Tensor& src, Tensor& pool, const Tensor& slots) {
  check_paged_kv_store(src, pool, slots);
  ++ops_issued_;
  require_paged_kv_support(*this, pool, "paged_kv_store");
  paged_kv_store_impl(src, pool, slots);
}

void Backend::paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                              const Tensor& tokens, const Tensor& block_tables, Tensor& out,
                              const PagedAttentionParams& params) {
  check_paged_attention(q, k_pool, v_pool, tokens, block_tables, out, params);
  ++ops_issued_;
  require_paged_kv_support(*this, k_pool, "paged_attention");
  paged_attention_impl(q, k_pool, v_pool, tokens, block_tables, out, params);
}

void Backend::paged_kv_store_impl(const Tensor&, Tensor&, const Tensor&) {
  fail("paged_kv_store: the {} backend has no paged attention", name());
}

void Backend::paged_attention_impl(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&, Tensor&, const PagedAttentionParams&) {
  fail("paged_attention: the {} backend has no paged attention", name());
}

}  // namespace torchless
