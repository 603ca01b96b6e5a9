#pragma once
// Attention kernels of the CUDA backend over contiguous F32 or F16 KV caches (rows = positions,
// n_kv_heads * head_dim columns), causal, GQA-aware (query head h reads KV head
// h / (n_heads / n_kv_heads)) and with an optional sliding window. Online softmax in F32.
// Launchers enqueue on `stream` and return at once; nothing here allocates or waits, so they
// can be captured in a CUDA graph given the scratch.
#include <cstddef>

#include <cuda_runtime.h>

#include "torchless/backends/cuda/cuda_kernels.h"

namespace torchless::cuda {

// Both kernels hold a head's accumulator in registers: head_dim <= 256.
bool flash_head_dim_supported(int head_dim);

// Several query tokens (prefill): one block per tile of 16 (token, head) rows of one KV head,
// keys streamed through shared memory 32 at a time.
void flash_attention(const float* q, const void* k_cache, const void* v_cache, bool f16, float* out,
                     const AttentionShape& s, cudaStream_t stream);

// One query token (decode), flash-decoding: the visible keys are split into chunks, each block
// produces the partial max, sum and output of up to 8 query heads of one KV head over its
// chunk, and a second kernel merges the chunks. `partial` holds kDecodePartialFloats floats
// (8 MiB, a buffer the backend allocates once): each chunk of each head takes head_dim + 2, so
// the chunk count is at most 64 and at most kDecodePartialFloats / (n_heads (head_dim + 2)),
// which flash_decode_fits() requires to be at least 1.
inline constexpr size_t kDecodePartialFloats = size_t{2} << 20;
bool flash_decode_fits(int n_heads, int head_dim);
void flash_decode(const float* q, const void* k_cache, const void* v_cache, bool f16,
                  float* partial, float* out, const AttentionShape& s, cudaStream_t stream);

}  // namespace torchless::cuda
