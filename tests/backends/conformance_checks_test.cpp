// The operand checks of the Backend ops (op_checks.h), once for every backend: each bad call
// must throw Error with exactly the same message on every backend, since the checks run above
// the backends.
#include <functional>
#include <string>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "torchless/core/error.h"

namespace torchless::conformance {
namespace {

// The message of the Error that `call` throws, or a note that it threw none.
std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

AttentionParams attention_params(int n_heads, int n_kv_heads, int head_dim, int n_tokens,
                                 int pos0) {
  AttentionParams p;
  p.n_tokens = n_tokens;
  p.pos0 = pos0;
  p.n_heads = n_heads;
  p.n_kv_heads = n_kv_heads;
  p.head_dim = head_dim;
  return p;
}

class ConformanceChecks : public BackendTest {
 protected:
  Tensor f32(const Shape& shape) { return backend().alloc(shape, DType::F32); }
};

TEST_P(ConformanceChecks, LinearAlgebraOperands) {
  Backend& b = backend();
  const Tensor w = f32(Shape{3, 4});
  Tensor y = f32(Shape{3});
  EXPECT_EQ(error_of([&] { b.matmul_vec(w, f32(Shape{5}), y); }),
            "matmul_vec: x has shape [5] (5 elements), expected 4 elements");
  Tensor none;
  EXPECT_EQ(error_of([&] { b.matmul_vec(w, f32(Shape{4}), none); }),
            "matmul_vec: y is an empty tensor");
  const Tensor ints = b.alloc(Shape{3, 4}, DType::I32);
  EXPECT_EQ(error_of([&] { b.matmul_vec(ints, f32(Shape{4}), y); }),
            fmt::format("matmul_vec: w is i32, which the {} backend does not support", b.name()));
  Tensor yb = f32(Shape{2, 3});
  EXPECT_EQ(error_of([&] {
              b.matmul(w, f32(Shape{2, 5}), yb);
            }),
            "matmul: x has shape [2, 5], w has shape [3, 4]: inner dimensions differ");
  EXPECT_EQ(error_of([&] {
              b.matmul(w, f32(Shape{3, 4}), yb);
            }),
            "matmul: y has shape [2, 3], expected [3, 3]");
  // y written while x is read by other threads: a mat-vec is never in place.
  Tensor square = f32(Shape{4});
  EXPECT_EQ(error_of([&] {
              b.matmul_vec(f32(Shape{4, 4}), square, square);
            }),
            "matmul_vec: y must not overlap x");
}

TEST_P(ConformanceChecks, RowAndElementwiseOperands) {
  Backend& b = backend();
  Tensor x = f32(Shape{4, 8});
  EXPECT_EQ(error_of([&] { b.rmsnorm(x, f32(Shape{9}), x, 1e-5f); }),
            "rmsnorm: weight has shape [9] (9 elements), expected 8 elements");
  const Tensor rows = f32(Shape{5, 8});
  Tensor y = rows.slice_rows(1, 4);
  EXPECT_EQ(error_of([&] { b.rmsnorm(rows.slice_rows(0, 4), f32(Shape{8}), y, 1e-5f); }),
            "rmsnorm: y must be x itself or not overlap it");
  Tensor half = b.alloc(Shape{4}, DType::F16);
  EXPECT_EQ(error_of([&] { b.softmax(half); }), "softmax: x must be f32, got f16");
  Tensor none;
  EXPECT_EQ(error_of([&] { b.silu(none); }), "silu: x is an empty tensor");
  Tensor out = f32(Shape{4, 8});
  EXPECT_EQ(error_of([&] {
              b.fused_silu_mul(x, f32(Shape{4, 7}), out);
            }),
            "fused_silu_mul: up has shape [4, 7] (28 elements), expected 32 elements");
  EXPECT_EQ(error_of([&] { b.add(x, f32(Shape{5}), out); }),
            "add: b has shape [5], expected a's shape [4, 8] or one row of 8 elements");
  EXPECT_EQ(error_of([&] { b.add(x, f32(Shape{8}), x); }), "(no error)");  // bias, in place
  Tensor freq = f32(Shape{2});
  EXPECT_EQ(error_of([&] {
              b.rope(x, freq, RopeParams{2, 5, 0, false});
            }),
            "rope: invalid n_heads 2, head_dim 5 (must be even) or pos0 0");
  EXPECT_EQ(error_of([&] {
              b.rope(x, freq, RopeParams{3, 4, 0, false});
            }),
            "rope: x has shape [4, 8], expected whole tokens of n_heads * head_dim = 12 elements");
}

TEST_P(ConformanceChecks, EmbeddingAndCacheOperands) {
  Backend& b = backend();
  const Weights table = make_weights(b, DType::F32, 4, 8, 1200);
  const std::vector<int32_t> ids = {1, 7};
  Tensor idt = b.alloc(Shape{2}, DType::I32);
  b.upload(std::as_bytes(std::span(ids)), idt);
  Tensor out = f32(Shape{2, 8});
  EXPECT_EQ(error_of([&] { b.embedding(table.tensor, idt, out); }),
            "embedding: token id 7 at index 1 is outside the table's 4 rows");
  EXPECT_EQ(error_of([&] { b.embedding(table.tensor, f32(Shape{2}), out); }),
            "embedding: ids must be i32, got f32");
  Tensor cache = f32(Shape{8, 6});
  EXPECT_EQ(error_of([&] {
              b.kv_store(f32(Shape{4, 6}), cache, 7);
            }),
            "kv_store: rows [7, 11) outside the cache's 8 rows");
  EXPECT_EQ(error_of([&] {
              b.kv_store(f32(Shape{4, 5}), cache, 0);
            }),
            "kv_store: src has shape [4, 5], expected whole rows of the cache's 6 elements");
  Tensor bf16 = b.alloc(Shape{8, 6}, DType::BF16);
  EXPECT_EQ(error_of([&] {
              b.kv_store(f32(Shape{1, 6}), bf16, 0);
            }),
            "kv_store: cache must be f32, f16 or q8_0, got bf16");
}

TEST_P(ConformanceChecks, AttentionOperands) {
  Backend& b = backend();
  const Tensor q = f32(Shape{1, 32});
  const Tensor k = f32(Shape{8, 32});
  Tensor out = f32(Shape{1, 32});
  EXPECT_EQ(error_of([&] { b.attention(q, k, k, out, attention_params(6, 4, 8, 1, 2)); }),
            "attention: invalid heads: n_heads 6, n_kv_heads 4 (must divide n_heads), head_dim 8");
  EXPECT_EQ(error_of([&] { b.attention(q, k, k, out, attention_params(4, 4, 8, 1, 8)); }),
            "attention: k_cache has shape [8, 32], expected at least 9 rows of n_kv_heads * "
            "head_dim = 32");
  const Tensor k16 = b.alloc(Shape{8, 32}, DType::F16);
  EXPECT_EQ(error_of([&] { b.attention(q, k, k16, out, attention_params(4, 4, 8, 1, 2)); }),
            "attention: k_cache is f32 and v_cache f16; the caches must share a type");
  Tensor in_place = q;
  EXPECT_EQ(error_of([&] { b.attention(q, k, k, in_place, attention_params(4, 4, 8, 1, 2)); }),
            "attention: out must not overlap q");
  Tensor scores = f32(Shape{4, 2});
  EXPECT_EQ(error_of([&] { b.attention_scores(q, k, scores, attention_params(4, 4, 8, 2, 2)); }),
            "attention_scores: n_tokens must be 1, got 2");
  Tensor heads = f32(Shape{32});
  EXPECT_EQ(error_of([&] { b.weighted_sum(scores, k, heads, attention_params(4, 4, 8, 1, 2)); }),
            "weighted_sum: scores has shape [4, 2], expected [4, 3]");
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceChecks, ::testing::ValuesIn(kBackends),
                         backend_test_name);

}  // namespace
}  // namespace torchless::conformance
