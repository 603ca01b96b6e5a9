#pragma once
// The operand rules of the Backend ops, written once: Backend's public ops call check_<op>
// before the backend's <op>_impl, so every backend rejects the same calls with the same
// messages ("<op>: <operand> ..."), and the implementations only assert. A check reads shapes,
// dtypes and buffer ranges (token ids only where the host can read them without waiting); it
// allocates nothing unless it throws, so it costs nanoseconds next to the op.
#include <cstdint>
#include <span>
#include <string_view>

#include "torchless/backends/backend.h"
#include "torchless/core/tensor.h"

namespace torchless::op_checks {

// --- the rules each op check is made of; each throws Error naming the op and the operand ---
// Has storage, and its bytes lie inside that storage.
void require_tensor(const Tensor& t, std::string_view op, std::string_view what);
// A tensor (as above) of `dtype`.
void require_dtype(const Tensor& t, DType dtype, std::string_view op, std::string_view what);
void require_f32(const Tensor& t, std::string_view op, std::string_view what);
void require_numel(const Tensor& t, int64_t n, std::string_view op, std::string_view what);
// An F32 tensor of n elements.
void require_f32(const Tensor& t, int64_t n, std::string_view op, std::string_view what);
// n_heads and n_kv_heads positive, n_kv_heads dividing n_heads, head_dim positive.
void require_heads(int n_heads, int n_kv_heads, int head_dim, std::string_view op);
// An F32 or F16 KV cache.
void require_kv_cache(const Tensor& cache, std::string_view op, std::string_view what);
// A tensor of a dtype `backend` accepts for weights (its supports_weight_dtype()).
void require_weight(const Backend& backend, const Tensor& w, std::string_view op,
                    std::string_view what);
void require_weight_dtype(const Backend& backend, DType dtype, std::string_view op,
                          std::string_view what);
// `out` shares no byte with `in` (an op reading `in` while writing `out` in parallel).
void require_disjoint(const Tensor& out, const Tensor& in, std::string_view op,
                      std::string_view out_name, std::string_view in_name);
// `out` is either exactly `in` (in place, for element- or row-wise ops) or disjoint from it.
void require_same_or_disjoint(const Tensor& out, const Tensor& in, std::string_view op,
                              std::string_view out_name, std::string_view in_name);
// Ids within [0, rows): reads the ids, so only for ids the host can read now.
void require_token_ids(const Tensor& ids, int64_t rows, std::string_view op);

// --- one check per op, in the order of backend.h ---
void check_matmul_vec(const Backend& b, const Tensor& w, const Tensor& x, const Tensor& y);
void check_matmul(const Backend& b, const Tensor& w, const Tensor& x, const Tensor& y);
// Each target as check_matmul_vec (x one-dimensional) or check_matmul; outputs disjoint.
void check_matmul_group(const Backend& b, const Tensor& x,
                        std::span<const Backend::MatmulTarget> targets);
void check_rmsnorm(const Tensor& x, const Tensor& weight, const Tensor& y);
void check_softmax(const Tensor& x);
void check_silu(const Tensor& x);
void check_fused_silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out);
void check_add(const Tensor& a, const Tensor& b, const Tensor& out);
void check_rope(const Tensor& x, const Tensor& inv_freq, const RopeParams& params);
void check_embedding(const Backend& b, const Tensor& table, const Tensor& ids, const Tensor& out);
void check_kv_store(const Tensor& src, const Tensor& cache, int pos0);
void check_attention_params(const AttentionParams& p, std::string_view op);
void check_attention_scores(const Tensor& q, const Tensor& k_cache, const Tensor& scores,
                            const AttentionParams& p);
void check_weighted_sum(const Tensor& scores, const Tensor& v_cache, const Tensor& out,
                        const AttentionParams& p);
void check_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const Tensor& out, const AttentionParams& p);

}  // namespace torchless::op_checks
