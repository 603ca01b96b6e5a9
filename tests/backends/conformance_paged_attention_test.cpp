// Conformance of the paged KV cache ops (paged_kv_store, paged_attention) over F32 and F16
// pools, and Q8_0 pools where the backend has them: sequences of awkward lengths scattered over
// shuffled blocks, tokens of different sequences interleaved in one batch, GQA and sliding windows,
// against the float64 reference attention over each sequence's contiguous keys and values. A
// token's result must also be bit for bit the same alone as in the batch.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless::conformance {
namespace {

constexpr double kAttentionAbs = 2e-5;  // as conformance_attention_test.cpp

struct PagedCase {
  int n_heads, n_kv_heads, head_dim, window, block_size;
  std::vector<int> lengths;  // per sequence: positions held (its queries are the last few)
};

const std::vector<PagedCase>& cases() {
  static const std::vector<PagedCase> all = {
      {4, 2, 16, 0, 16, {1, 17, 33, 5}}, {3, 1, 40, 5, 3, {9, 2, 14}},   {8, 8, 64, 0, 16, {40, 1}},
      {2, 2, 8, 0, 1, {6, 3}},           {4, 2, 32, 7, 16, {30, 3, 18}},
  };
  return all;
}

// Values as a pool of `dtype` stores them. Q8_0 blocks of 32 never straddle rows (rows are
// whole heads of a multiple of 32), so the flat vector quantises as its rows do.
std::vector<float> rounded(std::vector<float> v, DType dtype) {
  if (dtype == DType::F16) {
    for (float& x : v) x = fp16_to_fp32(fp32_to_fp16(x));
  } else if (dtype == DType::Q8_0) {
    const auto n = static_cast<int64_t>(v.size());
    std::vector<std::byte> blocks(dtype_row_bytes(dtype, n));
    quantize_row(dtype, v.data(), blocks.data(), n);
    dequantize_row(dtype, blocks.data(), v.data(), n);
  }
  return v;
}

// The pool types a case can use: Q8_0 where the backend has Q8_0 pools and heads are whole
// blocks.
std::vector<DType> pool_types(const Backend& backend, int head_dim) {
  std::vector<DType> types = {DType::F32, DType::F16};
  if (head_dim % kQK == 0 && backend.supports_paged_kv_dtype(DType::Q8_0)) {
    types.push_back(DType::Q8_0);
  }
  return types;
}

Tensor upload_i32(Backend& backend, const std::vector<int32_t>& values, const Shape& shape) {
  Tensor t = backend.alloc(shape, DType::I32);
  backend.upload(std::as_bytes(std::span(values)), t);
  return t;
}

// Backends without paged attention (supports_paged_attention() false) serve through the
// sequential scheduler; their paged ops throw, which RejectsMismatchedShapes does not test.
class ConformancePagedAttention : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    if (!backend().supports_paged_attention()) {
      GTEST_SKIP() << "backend " << GetParam() << " has no paged attention";
    }
  }
};

TEST_P(ConformancePagedAttention, BatchOfSequencesMatchesReferenceAndSingleTokens) {
  for (const PagedCase& c : cases()) {
    for (DType kv : pool_types(backend(), c.head_dim)) {
      const uint64_t seed = 7000 + static_cast<uint64_t>(c.head_dim * 31 + c.block_size);
      const std::string what =
          fmt::format("heads {}/{} dim {} window {} block {} kv {} seed {}", c.n_heads,
                      c.n_kv_heads, c.head_dim, c.window, c.block_size, dtype_name(kv), seed);
      const int64_t width = static_cast<int64_t>(c.n_heads) * c.head_dim;
      const int64_t kv_width = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
      const int bs = c.block_size;
      const int n_seqs = static_cast<int>(c.lengths.size());
      // Block tables over a shuffled pool with two spare blocks that are never read.
      int max_blocks = 0;
      int n_blocks = 2;
      for (int len : c.lengths) {
        max_blocks = std::max(max_blocks, (len + bs - 1) / bs);
        n_blocks += (len + bs - 1) / bs;
      }
      std::vector<int32_t> ids(static_cast<size_t>(n_blocks));
      std::iota(ids.begin(), ids.end(), 0);
      std::shuffle(ids.begin(), ids.end(), std::mt19937(static_cast<unsigned>(seed)));
      std::vector<int32_t> tables(static_cast<size_t>(n_seqs * max_blocks), 0);
      size_t next = 0;
      for (int s = 0; s < n_seqs; ++s) {
        for (int b = 0; b < (c.lengths[static_cast<size_t>(s)] + bs - 1) / bs; ++b) {
          tables[static_cast<size_t>(s * max_blocks + b)] = ids[next++];
        }
      }
      // Each sequence's keys and values, stored through paged_kv_store at their slots.
      const int64_t pool_rows = static_cast<int64_t>(n_blocks) * bs;
      Tensor k_pool = backend().alloc(Shape{pool_rows, kv_width}, kv);
      Tensor v_pool = backend().alloc(Shape{pool_rows, kv_width}, kv);
      {
        const auto junk =
            random_floats(static_cast<size_t>(pool_rows * kv_width), seed + 9, 1e3f, 1e4f);
        const Tensor junk_rows = upload_f32(backend(), junk, Shape{pool_rows, kv_width});
        std::vector<int32_t> all(static_cast<size_t>(pool_rows));
        std::iota(all.begin(), all.end(), 0);
        const Tensor all_slots = upload_i32(backend(), all, Shape{pool_rows});
        backend().paged_kv_store(junk_rows, k_pool, all_slots);
        backend().paged_kv_store(junk_rows, v_pool, all_slots);
      }
      std::vector<std::vector<float>> keys(static_cast<size_t>(n_seqs));
      std::vector<std::vector<float>> values(static_cast<size_t>(n_seqs));
      for (int s = 0; s < n_seqs; ++s) {
        const int len = c.lengths[static_cast<size_t>(s)];
        const auto n = static_cast<size_t>(len * kv_width);
        keys[static_cast<size_t>(s)] = random_floats(n, seed + 100 + static_cast<uint64_t>(s));
        values[static_cast<size_t>(s)] = random_floats(n, seed + 200 + static_cast<uint64_t>(s));
        std::vector<int32_t> slots(static_cast<size_t>(len));
        for (int p = 0; p < len; ++p) {
          slots[static_cast<size_t>(p)] =
              tables[static_cast<size_t>(s * max_blocks + p / bs)] * bs + p % bs;
        }
        const Tensor slot_tensor = upload_i32(backend(), slots, Shape{len});
        backend().paged_kv_store(
            upload_f32(backend(), keys[static_cast<size_t>(s)], Shape{len, kv_width}), k_pool,
            slot_tensor);
        backend().paged_kv_store(
            upload_f32(backend(), values[static_cast<size_t>(s)], Shape{len, kv_width}), v_pool,
            slot_tensor);
        keys[static_cast<size_t>(s)] = rounded(keys[static_cast<size_t>(s)], kv);
        values[static_cast<size_t>(s)] = rounded(values[static_cast<size_t>(s)], kv);
      }
      // Queries: the last up to 3 positions of each sequence, interleaved across sequences.
      std::vector<int32_t> token_rows;
      for (int back = 0; back < 3; ++back) {
        for (int s = n_seqs - 1; s >= 0; --s) {
          const int pos = c.lengths[static_cast<size_t>(s)] - 1 - back;
          if (pos >= 0) token_rows.insert(token_rows.end(), {s, pos});
        }
      }
      const int n_tokens = static_cast<int>(token_rows.size() / 2);
      const auto q = random_floats(static_cast<size_t>(n_tokens * width), seed + 5);
      PagedAttentionParams p;
      p.n_tokens = n_tokens;
      p.n_heads = c.n_heads;
      p.n_kv_heads = c.n_kv_heads;
      p.head_dim = c.head_dim;
      p.window = c.window;
      p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      p.block_size = bs;
      const Tensor table_tensor = upload_i32(backend(), tables, Shape{n_seqs, max_blocks});
      Tensor out = backend().alloc(Shape{n_tokens, width}, DType::F32);
      backend().paged_attention(upload_f32(backend(), q, Shape{n_tokens, width}), k_pool, v_pool,
                                upload_i32(backend(), token_rows, Shape{n_tokens, 2}), table_tensor,
                                out, p);
      const auto got = backend().to_host_f32(out);
      for (int t = 0; t < n_tokens; ++t) {
        const auto s = static_cast<size_t>(token_rows[static_cast<size_t>(2 * t)]);
        const int pos = token_rows[static_cast<size_t>(2 * t + 1)];
        const std::vector<float> qt(q.begin() + t * width, q.begin() + (t + 1) * width);
        reference::Attention r{
            1, pos, c.n_heads, c.n_kv_heads, c.head_dim, c.window, static_cast<double>(p.scale)};
        const auto want = reference::attention(qt, keys[s], values[s], r);
        const std::vector<float> row(got.begin() + t * width, got.begin() + (t + 1) * width);
        const std::string token_what = fmt::format("{} token {} (seq {} pos {})", what, t, s, pos);
        expect_close(row, want, {kAttentionAbs}, token_what);
        // Alone: the same bits.
        PagedAttentionParams one = p;
        one.n_tokens = 1;
        Tensor out_one = backend().alloc(Shape{1, width}, DType::F32);
        backend().paged_attention(
            upload_f32(backend(), qt, Shape{1, width}), k_pool, v_pool,
            upload_i32(backend(), {static_cast<int32_t>(s), pos}, Shape{1, 2}), table_tensor,
            out_one, one);
        const auto alone = backend().to_host_f32(out_one);
        EXPECT_TRUE(std::equal(alone.begin(), alone.end(), row.begin())) << token_what << " alone";
      }
    }
  }
}

TEST_P(ConformancePagedAttention, KvStoreWritesRowsAtTheirSlots) {
  for (DType kv : pool_types(backend(), 64)) {
    const int64_t cols = kv == DType::Q8_0 ? 64 : 37;  // Q8_0 rows are whole blocks
    const std::vector<int32_t> slots = {5, 0, 11, 3};
    const auto src = random_floats(slots.size() * static_cast<size_t>(cols), 99);
    Tensor pool = backend().alloc(Shape{12, cols}, kv);
    const std::vector<float> zeros(static_cast<size_t>(12 * cols), 0.0f);
    std::vector<int32_t> all(12);
    std::iota(all.begin(), all.end(), 0);
    backend().paged_kv_store(upload_f32(backend(), zeros, Shape{12, cols}), pool,
                             upload_i32(backend(), all, Shape{12}));
    backend().paged_kv_store(upload_f32(backend(), src, Shape{4, cols}), pool,
                             upload_i32(backend(), slots, Shape{4}));
    const std::vector<float> stored = backend().to_host_f32(pool);
    std::vector<double> want(static_cast<size_t>(12 * cols), 0.0);
    // Q8_0: the bytes of quantize_row, so the values exactly.
    const auto src_rounded = rounded(src, kv);
    for (size_t i = 0; i < slots.size(); ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        want[static_cast<size_t>(slots[i] * cols + j)] =
            src_rounded[static_cast<size_t>(static_cast<int64_t>(i) * cols + j)];
      }
    }
    expect_close(stored, want, {0.0}, fmt::format("paged_kv_store {}", dtype_name(kv)));
  }
}

// A Q8_0 pool needs heads of whole blocks, and a backend that quantises and reads it.
TEST_P(ConformancePagedAttention, RejectsQ8_0PoolsItCannotRead) {
  Tensor pool = backend().alloc(Shape{32, 64}, DType::Q8_0);
  const Tensor src = upload_f32(backend(), random_floats(64, 3), Shape{1, 64});
  const Tensor slot = upload_i32(backend(), {0}, Shape{1});
  if (!backend().supports_paged_kv_dtype(DType::Q8_0)) {
    EXPECT_THROW(backend().paged_kv_store(src, pool, slot), Error);
    return;
  }
  PagedAttentionParams p;
  p.n_tokens = 1;
  p.n_heads = 4;
  p.n_kv_heads = 4;
  p.head_dim = 16;  // a block of 32 would straddle two heads
  p.block_size = 16;
  const Tensor q = upload_f32(backend(), random_floats(64, 4), Shape{1, 64});
  Tensor out = backend().alloc(Shape{1, 64}, DType::F32);
  EXPECT_THROW(backend().paged_attention(q, pool, pool, upload_i32(backend(), {0, 0}, Shape{1, 2}),
                                         upload_i32(backend(), {0}, Shape{1, 1}), out, p),
               Error);
}

TEST_P(ConformancePagedAttention, RejectsMismatchedShapes) {
  Tensor pool = backend().alloc(Shape{32, 16}, DType::F32);
  const Tensor src = upload_f32(backend(), random_floats(3 * 8, 1), Shape{3, 8});
  EXPECT_THROW(backend().paged_kv_store(src, pool, upload_i32(backend(), {0, 1, 2}, Shape{3})),
               Error);
  PagedAttentionParams p;
  p.n_tokens = 1;
  p.n_heads = 2;
  p.n_kv_heads = 1;
  p.head_dim = 16;
  p.block_size = 5;  // 32 pool rows are not whole blocks of 5
  const Tensor q = upload_f32(backend(), random_floats(32, 2), Shape{1, 32});
  Tensor out = backend().alloc(Shape{1, 32}, DType::F32);
  EXPECT_THROW(backend().paged_attention(q, pool, pool, upload_i32(backend(), {0, 0}, Shape{1, 2}),
                                         upload_i32(backend(), {0}, Shape{1, 1}), out, p),
               Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformancePagedAttention, ::testing::ValuesIn(kBackends),
                         backend_test_name);

}  // namespace
}  // namespace torchless::conformance
