#pragma once
// The CUDA backend's kernel launchers: plain C++ declarations over device pointers, so that the
// host code (.cpp, compiled by the C++ compiler) never sees CUDA syntax. Each launcher enqueues
// on `stream` and returns at once; launch errors surface at the backend's next check.
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "torchless/core/dtype.h"

namespace torchless::cuda {

// Whether matvec/dequantize below handle weights of this dtype.
bool kernel_supports(DType dtype);

// y[t * rows + r] = sum_c W[r, c] x[t * cols + c] for t < n: one warp per row and token, F32
// accumulation, weights read in place in their own layout.
void matvec(DType dtype, const std::byte* w, const float* x, float* y, int64_t rows, int64_t cols,
            int64_t n, cudaStream_t stream);
// out[r * cols + c] = W[first_row + r, c] as F32, for r < count (a tile for cuBLAS, or
// embedding rows picked by ids when ids != nullptr: out row r = W[ids[r]]).
void dequantize_rows(DType dtype, const std::byte* w, int64_t cols, int64_t first_row,
                     int64_t count, const int32_t* ids, float* out, cudaStream_t stream);

void rmsnorm(const float* x, const float* weight, float* y, int64_t rows, int64_t cols, float eps,
             cudaStream_t stream);
void softmax(float* x, int64_t rows, int64_t cols, cudaStream_t stream);
void silu(float* x, int64_t n, cudaStream_t stream);
void silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);
// out = a + b, b repeating every b_n elements (b_n == n: same shape; b_n == cols: a bias row).
void add(const float* a, const float* b, float* out, int64_t n, int64_t b_n, cudaStream_t stream);
void rope(float* x, const float* inv_freq, int64_t n_tokens, int n_heads, int head_dim, int pos0,
          bool neox, cudaStream_t stream);

// Rows [pos0, pos0 + n) of an F32 or F16 cache from F32 src rows of `cols` elements.
void kv_store(const float* src, void* cache, bool f16, int64_t n, int64_t cols, int64_t pos0,
              cudaStream_t stream);

struct AttentionShape {
  int n_tokens, pos0, n_heads, n_kv_heads, head_dim, window;
  float scale;
};
void attention_scores(const float* q, const void* k_cache, bool f16, float* scores,
                      const AttentionShape& s, cudaStream_t stream);
void weighted_sum(const float* scores, const void* v_cache, bool f16, float* out,
                  const AttentionShape& s, cudaStream_t stream);

}  // namespace torchless::cuda
