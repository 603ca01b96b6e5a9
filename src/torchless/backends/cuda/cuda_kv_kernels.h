#pragma once
// Launchers of the KV cache kernels (cuda_paged_attention.cu, cuda_kv_quant.cu): storing rows
// into a contiguous or paged cache of F32, F16 or Q8_0, and attention over either layout. Plain
// C++ declarations over device pointers, as cuda_kernels.h. Nothing here allocates or waits, so
// the launches can be captured into a CUDA graph; the index tensors (slots, tokens, block tables)
// are read on the device and trusted (their shapes were checked by paged_checks.h).
#include <cstdint>

#include <cuda_runtime.h>

#include "torchless/backends/cuda/cuda_kernels.h"
#include "torchless/core/dtype.h"

namespace torchless::cuda {

// Writes n rows of `cols` F32 values from src into cache rows slots[i], or pos0 + i when slots is
// null, as F32, F16 (round to nearest even) or Q8_0 (blocks of 32 along the row, as
// quantize_row in core/quant.cpp: d = amax / 127, codes rint(x / d); cols % 32 == 0).
void kv_store_rows(DType cache_type, const float* src, void* cache, const int32_t* slots, int64_t n,
                   int64_t cols, int64_t pos0, cudaStream_t stream);

// Where the queries' keys and values are. Contiguous (tokens == nullptr): token t is at position
// pos0 + t and position p at cache row p. Paged: tokens[2t, 2t + 1] = (sequence s, position p),
// and position j of sequence s at row tables[s * max_blocks + j / block_size] * block_size +
// j % block_size.
struct KvLayout {
  const int32_t* tokens = nullptr;
  const int32_t* tables = nullptr;
  int max_blocks = 0;
  int block_size = 1;
  int pos0 = 0;
};

struct KvAttentionShape {
  int n_tokens, n_heads, n_kv_heads, head_dim, window;
  float scale;
};

// head_dim up to 256 (a head's accumulator lives in registers, 8 values per lane).
bool kv_attention_head_dim_supported(int head_dim);
// Causal attention (GQA, sliding window) of each token over its own visible positions: one
// block per (token, head), each warp an online softmax over every 4th position, merged at the
// end. A token's result depends only on its q and its sequence's rows, never on the batch.
void kv_attention(DType cache_type, const float* q, const void* k, const void* v, float* out,
                  const KvAttentionShape& shape, const KvLayout& layout, cudaStream_t stream);

// The decode primitives (n_tokens == 1) over a Q8_0 cache; F32 and F16 are cuda_kernels.h's.
void attention_scores_q8_0(const float* q, const void* k_cache, float* scores,
                           const AttentionShape& s, cudaStream_t stream);
void weighted_sum_q8_0(const float* scores, const void* v_cache, float* out,
                       const AttentionShape& s, cudaStream_t stream);

}  // namespace torchless::cuda
