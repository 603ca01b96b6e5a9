// The operand rules of the Backend ops (op_checks.h). Messages name the op, then the operand,
// then what was expected; every backend shows exactly these.
#include "torchless/backends/op_checks.h"

#include <cstring>

#include "torchless/core/error.h"
#include "torchless/core/quant.h"

namespace torchless::op_checks {
namespace {

// Byte range [begin, end) of t inside its buffer.
struct ByteRange {
  size_t begin, end;
};

ByteRange range_of(const Tensor& t) {
  return {t.offset, t.offset + t.nbytes()};
}

bool overlap(const Tensor& a, const Tensor& b) {
  if (a.buffer != b.buffer || a.empty()) return false;
  const ByteRange ra = range_of(a), rb = range_of(b);
  return ra.begin < rb.end && rb.begin < ra.end;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.buffer == b.buffer && a.offset == b.offset && a.nbytes() == b.nbytes();
}

}  // namespace

void require_tensor(const Tensor& t, std::string_view op, std::string_view what) {
  if (t.empty()) fail("{}: {} is an empty tensor", op, what);
  if (t.shape.numel() < 0 || t.offset + t.nbytes() > t.buffer->size()) {
    fail("{}: {} of shape {} ({} bytes at offset {}) overruns its {}-byte buffer", op, what,
         t.shape.str(), t.nbytes(), t.offset, t.buffer->size());
  }
}

void require_dtype(const Tensor& t, DType dtype, std::string_view op, std::string_view what) {
  require_tensor(t, op, what);
  if (t.dtype != dtype) {
    fail("{}: {} must be {}, got {}", op, what, dtype_name(dtype), dtype_name(t.dtype));
  }
}

void require_f32(const Tensor& t, std::string_view op, std::string_view what) {
  require_dtype(t, DType::F32, op, what);
}

void require_numel(const Tensor& t, int64_t n, std::string_view op, std::string_view what) {
  if (t.numel() != n) {
    fail("{}: {} has shape {} ({} elements), expected {} elements", op, what, t.shape.str(),
         t.numel(), n);
  }
}

void require_f32(const Tensor& t, int64_t n, std::string_view op, std::string_view what) {
  require_f32(t, op, what);
  require_numel(t, n, op, what);
}

void require_heads(int n_heads, int n_kv_heads, int head_dim, std::string_view op) {
  if (n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || n_heads % n_kv_heads != 0) {
    fail("{}: invalid heads: n_heads {}, n_kv_heads {} (must divide n_heads), head_dim {}", op,
         n_heads, n_kv_heads, head_dim);
  }
}

void require_kv_cache(const Tensor& cache, std::string_view op, std::string_view what) {
  require_tensor(cache, op, what);
  if (cache.dtype != DType::F32 && cache.dtype != DType::F16 && cache.dtype != DType::Q8_0) {
    fail("{}: {} must be f32, f16 or q8_0, got {}", op, what, dtype_name(cache.dtype));
  }
}

void require_weight_dtype(const Backend& backend, DType dtype, std::string_view op,
                          std::string_view what) {
  if (!backend.supports_weight_dtype(dtype)) {
    fail("{}: {} is {}, which the {} backend does not support", op, what, dtype_name(dtype),
         backend.name());
  }
}

void require_weight(const Backend& backend, const Tensor& w, std::string_view op,
                    std::string_view what) {
  require_tensor(w, op, what);
  require_weight_dtype(backend, w.dtype, op, what);
}

void require_disjoint(const Tensor& out, const Tensor& in, std::string_view op,
                      std::string_view out_name, std::string_view in_name) {
  if (overlap(out, in)) fail("{}: {} must not overlap {}", op, out_name, in_name);
}

void require_same_or_disjoint(const Tensor& out, const Tensor& in, std::string_view op,
                              std::string_view out_name, std::string_view in_name) {
  if (overlap(out, in) && !same_bytes(out, in)) {
    fail("{}: {} must be {} itself or not overlap it", op, out_name, in_name);
  }
}

void require_token_ids(const Tensor& ids, int64_t rows, std::string_view op) {
  const std::byte* host = ids.data();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    int32_t id;
    std::memcpy(&id, host + i * static_cast<int64_t>(sizeof id), sizeof id);
    if (id < 0 || id >= rows) {
      fail("{}: token id {} at index {} is outside the table's {} rows", op, id, i, rows);
    }
  }
}

// --- linear algebra ---------------------------------------------------------------------

void check_matmul_vec(const Backend& b, const Tensor& w, const Tensor& x, const Tensor& y) {
  constexpr std::string_view op = "matmul_vec";
  require_weight(b, w, op, "w");
  require_f32(x, w.cols(), op, "x");
  require_f32(y, w.rows(), op, "y");
  require_disjoint(y, x, op, "y", "x");
  require_disjoint(y, w, op, "y", "w");
}

void check_matmul(const Backend& b, const Tensor& w, const Tensor& x, const Tensor& y) {
  constexpr std::string_view op = "matmul";
  require_weight(b, w, op, "w");
  require_f32(x, op, "x");
  require_f32(y, op, "y");
  if (x.cols() != w.cols()) {
    fail("matmul: x has shape {}, w has shape {}: inner dimensions differ", x.shape.str(),
         w.shape.str());
  }
  if (y.cols() != w.rows() || y.rows() != x.rows()) {
    fail("matmul: y has shape {}, expected [{}, {}]", y.shape.str(), x.rows(), w.rows());
  }
  require_disjoint(y, x, op, "y", "x");
  require_disjoint(y, w, op, "y", "w");
}

void check_matmul_group(const Backend& b, const Tensor& x,
                        std::span<const Backend::MatmulTarget> targets) {
  for (size_t i = 0; i < targets.size(); ++i) {
    const Backend::MatmulTarget& t = targets[i];
    if (t.w == nullptr || t.y == nullptr) fail("matmul_group: target {} has no w or y", i);
    if (x.shape.rank() == 1) {
      check_matmul_vec(b, *t.w, x, *t.y);
    } else {
      check_matmul(b, *t.w, x, *t.y);
    }
    for (size_t j = 0; j < i; ++j) {
      if (overlap(*t.y, *targets[j].y)) {
        fail("matmul_group: the outputs of targets {} and {} overlap", j, i);
      }
      if (overlap(*t.y, *targets[j].w) || overlap(*targets[j].y, *t.w)) {
        fail("matmul_group: an output of targets {} and {} overlaps the other's w", j, i);
      }
    }
  }
}

// --- row-wise and elementwise ops -------------------------------------------------------

void check_rmsnorm(const Tensor& x, const Tensor& weight, const Tensor& y) {
  constexpr std::string_view op = "rmsnorm";
  require_f32(x, op, "x");
  require_f32(weight, x.cols(), op, "weight");
  require_f32(y, x.numel(), op, "y");
  require_same_or_disjoint(y, x, op, "y", "x");
  require_disjoint(y, weight, op, "y", "weight");
}

void check_softmax(const Tensor& x) {
  require_f32(x, "softmax", "x");
}

void check_silu(const Tensor& x) {
  require_f32(x, "silu", "x");
}

void check_fused_silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) {
  constexpr std::string_view op = "fused_silu_mul";
  require_f32(gate, op, "gate");
  require_f32(up, gate.numel(), op, "up");
  require_f32(out, gate.numel(), op, "out");
  require_same_or_disjoint(out, gate, op, "out", "gate");
  require_same_or_disjoint(out, up, op, "out", "up");
}

void check_add(const Tensor& a, const Tensor& b, const Tensor& out) {
  constexpr std::string_view op = "add";
  require_f32(a, op, "a");
  require_f32(b, op, "b");
  require_f32(out, a.numel(), op, "out");
  if (b.numel() != a.numel() && b.numel() != a.cols()) {
    fail("add: b has shape {}, expected a's shape {} or one row of {} elements", b.shape.str(),
         a.shape.str(), a.cols());
  }
  require_same_or_disjoint(out, a, op, "out", "a");
  require_same_or_disjoint(out, b, op, "out", "b");
}

void check_rope(const Tensor& x, const Tensor& inv_freq, const RopeParams& p) {
  constexpr std::string_view op = "rope";
  require_f32(x, op, "x");
  require_f32(inv_freq, op, "inv_freq");
  if (p.n_heads <= 0 || p.head_dim <= 0 || p.head_dim % 2 != 0 || p.pos0 < 0) {
    fail("rope: invalid n_heads {}, head_dim {} (must be even) or pos0 {}", p.n_heads, p.head_dim,
         p.pos0);
  }
  const int64_t width = int64_t{p.n_heads} * p.head_dim;
  if (x.numel() % width != 0) {
    fail("rope: x has shape {}, expected whole tokens of n_heads * head_dim = {} elements",
         x.shape.str(), width);
  }
  require_numel(inv_freq, p.head_dim / 2, op, "inv_freq");
  require_disjoint(x, inv_freq, op, "x", "inv_freq");
}

void check_embedding(const Backend& b, const Tensor& table, const Tensor& ids, const Tensor& out) {
  constexpr std::string_view op = "embedding";
  require_weight(b, table, op, "table");
  require_dtype(ids, DType::I32, op, "ids");
  require_f32(out, ids.numel() * table.cols(), op, "out");
  require_disjoint(out, table, op, "out", "table");
  require_disjoint(out, ids, op, "out", "ids");
}

// --- attention --------------------------------------------------------------------------

void check_kv_store(const Tensor& src, const Tensor& cache, int pos0) {
  constexpr std::string_view op = "kv_store";
  require_f32(src, op, "src");
  require_kv_cache(cache, op, "cache");
  const int64_t cols = cache.cols();
  if (cols <= 0 || src.numel() % cols != 0) {
    fail("kv_store: src has shape {}, expected whole rows of the cache's {} elements",
         src.shape.str(), cols);
  }
  const int64_t n = src.numel() / cols;
  if (pos0 < 0 || pos0 + n > cache.rows()) {
    fail("kv_store: rows [{}, {}) outside the cache's {} rows", pos0, pos0 + n, cache.rows());
  }
  require_disjoint(cache, src, op, "cache", "src");
}

void check_attention_params(const AttentionParams& p, std::string_view op) {
  require_heads(p.n_heads, p.n_kv_heads, p.head_dim, op);
  if (p.n_tokens < 1 || p.pos0 < 0 || p.window < 0) {
    fail("{}: invalid n_tokens {}, pos0 {} or window {}", op, p.n_tokens, p.pos0, p.window);
  }
}

namespace {

void require_cache_rows(const Tensor& cache, const AttentionParams& p, std::string_view op,
                        std::string_view what) {
  require_kv_cache(cache, op, what);
  if (cache.dtype == DType::Q8_0 && p.head_dim % kQK != 0) {
    fail("{}: a q8_0 {} needs head_dim a multiple of {}, got {}", op, what, kQK, p.head_dim);
  }
  const int64_t width = int64_t{p.n_kv_heads} * p.head_dim;
  if (cache.cols() != width || cache.rows() < int64_t{p.pos0} + p.n_tokens) {
    fail("{}: {} has shape {}, expected at least {} rows of n_kv_heads * head_dim = {}", op, what,
         cache.shape.str(), int64_t{p.pos0} + p.n_tokens, width);
  }
}

// The decode primitives' [n_heads, pos0 + 1] scores.
void require_scores(const Tensor& scores, const AttentionParams& p, std::string_view op) {
  require_f32(scores, op, "scores");
  const int64_t len = int64_t{p.pos0} + 1;
  if (scores.rows() != p.n_heads || scores.cols() != len) {
    fail("{}: scores has shape {}, expected [{}, {}]", op, scores.shape.str(), p.n_heads, len);
  }
}

void require_one_token(const AttentionParams& p, std::string_view op) {
  check_attention_params(p, op);
  if (p.n_tokens != 1) fail("{}: n_tokens must be 1, got {}", op, p.n_tokens);
}

}  // namespace

void check_attention_scores(const Tensor& q, const Tensor& k_cache, const Tensor& scores,
                            const AttentionParams& p) {
  constexpr std::string_view op = "attention_scores";
  require_one_token(p, op);
  require_f32(q, int64_t{p.n_heads} * p.head_dim, op, "q");
  require_cache_rows(k_cache, p, op, "k_cache");
  require_scores(scores, p, op);
  require_disjoint(scores, q, op, "scores", "q");
  require_disjoint(scores, k_cache, op, "scores", "k_cache");
}

void check_weighted_sum(const Tensor& scores, const Tensor& v_cache, const Tensor& out,
                        const AttentionParams& p) {
  constexpr std::string_view op = "weighted_sum";
  require_one_token(p, op);
  require_scores(scores, p, op);
  require_cache_rows(v_cache, p, op, "v_cache");
  require_f32(out, int64_t{p.n_heads} * p.head_dim, op, "out");
  require_disjoint(out, scores, op, "out", "scores");
  require_disjoint(out, v_cache, op, "out", "v_cache");
}

void check_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const Tensor& out, const AttentionParams& p) {
  constexpr std::string_view op = "attention";
  check_attention_params(p, op);
  const int64_t width = int64_t{p.n_tokens} * p.n_heads * p.head_dim;
  require_f32(q, width, op, "q");
  require_cache_rows(k_cache, p, op, "k_cache");
  require_cache_rows(v_cache, p, op, "v_cache");
  if (k_cache.dtype != v_cache.dtype) {
    fail("attention: k_cache is {} and v_cache {}; the caches must share a type",
         dtype_name(k_cache.dtype), dtype_name(v_cache.dtype));
  }
  require_f32(out, width, op, "out");
  require_disjoint(out, q, op, "out", "q");
  require_disjoint(out, k_cache, op, "out", "k_cache");
  require_disjoint(out, v_cache, op, "out", "v_cache");
}

}  // namespace torchless::op_checks
