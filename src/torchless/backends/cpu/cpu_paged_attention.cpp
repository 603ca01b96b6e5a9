// Paged attention ops of the CPU backend (F32, F16 and Q8_0 pools). The fused op runs per
// (token, head) as the contiguous one does (cpu_attention.cpp): scores block by block into
// per-thread scratch, softmax, then the weighted sum of values block by block in the same
// position order, so a token gets exactly the bits the contiguous cache would give it, whatever
// else is in the batch.
#include <algorithm>
#include <cstring>

#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/backends/cpu/cpu_memory.h"
#include "torchless/core/error.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

// The host view of the index tensors, checked once per call (they are small).
struct PagedIndex {
  const int32_t* tokens = nullptr;  // [n, 2]: (sequence, position)
  const int32_t* tables = nullptr;  // [n_seqs, max_blocks]
  int64_t max_blocks = 0;

  int32_t block_row(int32_t seq, int64_t pos, int block_size) const {
    return tables[seq * max_blocks + pos / block_size];
  }
};

PagedIndex check_index(const Tensor& tokens, const Tensor& block_tables, int n_tokens,
                       int64_t pool_blocks, const PagedAttentionParams& p) {
  PagedIndex index;
  index.tokens = reinterpret_cast<const int32_t*>(cpu::host_bytes(tokens));
  index.tables = reinterpret_cast<const int32_t*>(cpu::host_bytes(block_tables));
  index.max_blocks = block_tables.cols();
  const int64_t n_seqs = block_tables.rows();
  for (int i = 0; i < n_tokens; ++i) {
    const int32_t seq = index.tokens[2 * i];
    const int32_t pos = index.tokens[2 * i + 1];
    if (seq < 0 || seq >= n_seqs || pos < 0 || pos / p.block_size >= index.max_blocks) {
      fail(
          "paged_attention: token {} is (sequence {}, position {}), outside {} sequences of {} "
          "blocks of {}",
          i, seq, pos, n_seqs, index.max_blocks, p.block_size);
    }
    for (int64_t b = 0; b <= pos / p.block_size; ++b) {
      const int32_t block = index.tables[seq * index.max_blocks + b];
      if (block < 0 || block >= pool_blocks) {
        fail("paged_attention: sequence {} maps block {} to {}, outside the pool's {} blocks", seq,
             b, block, pool_blocks);
      }
    }
  }
  return index;
}

// A Q8_0 head starts on a block (head_dim % 32 == 0, paged_checks.h).
size_t head_offset(const Tensor& pool, int kvh, int head_dim) {
  return dtype_row_bytes(pool.dtype, static_cast<int64_t>(kvh) * head_dim);
}

}  // namespace

void CpuBackend::paged_kv_store_impl(const Tensor& src, Tensor& pool, const Tensor& slots) {
  const float* sp = cpu::host_f32(src);
  std::byte* pp = cpu::host_bytes(pool);
  const auto* slot = reinterpret_cast<const int32_t*>(cpu::host_bytes(slots));
  const int64_t cols = pool.cols();
  for (int64_t i = 0; i < src.rows(); ++i) {
    if (slot[i] < 0 || slot[i] >= pool.rows()) {
      fail("paged_kv_store: slot {} of row {} is outside the pool's {} rows", slot[i], i,
           pool.rows());
    }
    std::byte* dst = pp + static_cast<size_t>(slot[i]) * pool.row_bytes();
    if (pool.dtype == DType::F16) {
      cpu::f32_to_f16(sp + i * cols, reinterpret_cast<uint16_t*>(dst), cols);
    } else if (pool.dtype == DType::Q8_0) {  // blocks of 32 along the row, as kv_store
      quantize_row(DType::Q8_0, sp + i * cols, dst, cols);
    } else {
      std::memcpy(dst, sp + i * cols, static_cast<size_t>(cols) * sizeof(float));
    }
  }
}

void CpuBackend::paged_attention_impl(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                      const Tensor& tokens, const Tensor& block_tables, Tensor& out,
                                      const PagedAttentionParams& p) {
  const float* qp = cpu::host_f32(q);
  float* op = cpu::host_f32(out);
  const std::byte* kp = cpu::host_bytes(k_pool);
  const std::byte* vp = cpu::host_bytes(v_pool);
  const int bs = p.block_size;
  const PagedIndex index = check_index(tokens, block_tables, p.n_tokens, k_pool.rows() / bs, p);
  int32_t longest = 0;
  for (int i = 0; i < p.n_tokens; ++i) longest = std::max(longest, index.tokens[2 * i + 1]);
  reserve_thread_scratch(static_cast<size_t>(longest) + 1);
  const int64_t width = static_cast<int64_t>(p.n_heads) * p.head_dim;
  const size_t row_bytes = k_pool.row_bytes();
  const int group = p.n_heads / p.n_kv_heads;
  const int64_t tasks = static_cast<int64_t>(p.n_tokens) * p.n_heads;
  pool_.parallel_for(tasks, 1, [&](int64_t i0, int64_t i1, int thread) {
    float* scores = thread_scratch(thread);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / p.n_heads;
      const int h = static_cast<int>(i % p.n_heads);
      const int32_t seq = index.tokens[2 * t];
      const int64_t pos = index.tokens[2 * t + 1];
      const int64_t lo = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
      const int64_t n = pos + 1 - lo;
      const size_t k_head = head_offset(k_pool, h / group, p.head_dim);
      const size_t v_head = head_offset(v_pool, h / group, p.head_dim);
      const float* qrow = qp + t * width + static_cast<int64_t>(h) * p.head_dim;
      // Visible positions [lo, pos] run through consecutive rows of each block in turn.
      for (int64_t j = lo; j <= pos;) {
        const int64_t end = std::min<int64_t>(pos + 1, (j / bs + 1) * bs);
        const int64_t row = static_cast<int64_t>(index.block_row(seq, j, bs)) * bs + j % bs;
        cpu::attention_scores_row(qrow, kp + static_cast<size_t>(row) * row_bytes + k_head,
                                  row_bytes, k_pool.dtype, p.head_dim, 0, end - j, p.scale,
                                  scores + (j - lo));
        j = end;
      }
      cpu::softmax_row(scores, n);
      float* orow = op + t * width + static_cast<int64_t>(h) * p.head_dim;
      std::fill(orow, orow + p.head_dim, 0.0f);
      for (int64_t j = lo; j <= pos;) {
        const int64_t end = std::min<int64_t>(pos + 1, (j / bs + 1) * bs);
        const int64_t row = static_cast<int64_t>(index.block_row(seq, j, bs)) * bs + j % bs;
        cpu::weighted_sum_add_row(scores + (j - lo),
                                  vp + static_cast<size_t>(row) * row_bytes + v_head, row_bytes,
                                  v_pool.dtype, p.head_dim, 0, end - j, orow);
        j = end;
      }
    }
  });
}

}  // namespace torchless
