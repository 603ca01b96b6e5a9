#include "torchless/backends/paged_checks.h"

#include "torchless/backends/op_checks.h"
#include "torchless/core/error.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

using op_checks::require_dtype;

void check_pool(const Tensor& pool, std::string_view op, std::string_view what) {
  op_checks::require_tensor(pool, op, what);
  if (pool.dtype != DType::F32 && pool.dtype != DType::F16 && pool.dtype != DType::Q8_0) {
    fail("{}: {} must be f32, f16 or q8_0, got {}", op, what, dtype_name(pool.dtype));
  }
  if (pool.shape.rank() != 2) fail("{}: {} must be 2-D, got {}", op, what, pool.shape.str());
}

}  // namespace

void check_paged_kv_store(const Tensor& src, const Tensor& pool, const Tensor& slots) {
  constexpr std::string_view op = "paged_kv_store";
  require_dtype(src, DType::F32, op, "src");
  check_pool(pool, op, "pool");
  require_dtype(slots, DType::I32, op, "slots");
  if (src.cols() != pool.cols()) {
    fail("{}: src has shape {}, pool rows have {} elements", op, src.shape.str(), pool.cols());
  }
  if (slots.numel() != src.rows()) {
    fail("{}: {} slots for {} source rows", op, slots.numel(), src.rows());
  }
}

void check_paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                           const Tensor& tokens, const Tensor& block_tables, const Tensor& out,
                           const PagedAttentionParams& p) {
  constexpr std::string_view op = "paged_attention";
  op_checks::require_heads(p.n_heads, p.n_kv_heads, p.head_dim, op);
  if (p.n_tokens < 1 || p.window < 0 || p.block_size < 1) {
    fail("{}: invalid n_tokens {}, window {} or block_size {}", op, p.n_tokens, p.window,
         p.block_size);
  }
  require_dtype(q, DType::F32, op, "q");
  require_dtype(out, DType::F32, op, "out");
  check_pool(k_pool, op, "k_pool");
  check_pool(v_pool, op, "v_pool");
  require_dtype(tokens, DType::I32, op, "tokens");
  require_dtype(block_tables, DType::I32, op, "block_tables");
  const int64_t width = static_cast<int64_t>(p.n_heads) * p.head_dim;
  if (q.numel() != p.n_tokens * width || out.numel() != p.n_tokens * width) {
    fail("{}: q {} and out {} must hold {} tokens x {} values", op, q.shape.str(), out.shape.str(),
         p.n_tokens, width);
  }
  if (out.buffer == q.buffer && out.offset == q.offset) fail("{}: out must not alias q", op);
  if (k_pool.dtype == DType::Q8_0 && p.head_dim % kQK != 0) {
    fail("{}: q8_0 pools need head_dim a multiple of {} (blocks must not straddle heads), got {}",
         op, kQK, p.head_dim);
  }
  const int64_t kv_width = static_cast<int64_t>(p.n_kv_heads) * p.head_dim;
  if (k_pool.shape != v_pool.shape || k_pool.dtype != v_pool.dtype || k_pool.cols() != kv_width ||
      k_pool.rows() % p.block_size != 0) {
    fail(
        "{}: pools {} {} and {} {} must match, with rows of n_kv_heads * head_dim = {} in "
        "blocks of {}",
        op, k_pool.shape.str(), dtype_name(k_pool.dtype), v_pool.shape.str(),
        dtype_name(v_pool.dtype), kv_width, p.block_size);
  }
  if (tokens.numel() != 2 * static_cast<int64_t>(p.n_tokens)) {
    fail("{}: tokens has shape {}, expected [{}, 2]", op, tokens.shape.str(), p.n_tokens);
  }
  if (block_tables.shape.rank() != 2) {
    fail("{}: block_tables must be [n_sequences, max_blocks], got {}", op,
         block_tables.shape.str());
  }
}

}  // namespace torchless
