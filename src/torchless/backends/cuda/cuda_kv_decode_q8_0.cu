// The decode primitives attention_scores and weighted_sum (one query token at pos0) over a Q8_0
// KV cache, in the shapes of their F32/F16 kernels in cuda_ops.cu: one warp per (head, key) for
// the scores, one thread per (head, dimension) for the weighted sum.
#include "torchless/backends/cuda/cuda_kv_kernels.h"
#include "torchless/backends/cuda/cuda_kv_rows.cuh"

namespace torchless::cuda {
namespace {

constexpr int kScoreWarps = 4;
constexpr int kSumThreads = 64;

unsigned grid_for(int64_t n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

__global__ void scores_q8_0(const float* __restrict__ q, KvQ8_0 k, float* __restrict__ scores,
                            AttentionShape s) {
  const int lane = threadIdx.x % 32;
  const int64_t p = int64_t(blockIdx.x) * kScoreWarps + threadIdx.x / 32;
  const int h = blockIdx.y;
  const int64_t len = int64_t(s.pos0) + 1;
  if (p >= len) return;
  float* out = scores + h * len + p;
  const int64_t lo = s.window > 0 ? max(int64_t(0), int64_t(s.pos0) - s.window + 1) : 0;
  if (p < lo) {
    if (lane == 0) *out = -INFINITY;
    return;
  }
  const int64_t head0 = int64_t(h / (s.n_heads / s.n_kv_heads)) * s.head_dim;
  float dot = 0.0f;
  for (int d = lane; d < s.head_dim; d += 32)
    dot = fmaf(q[h * s.head_dim + d], k.at(p, head0 + d), dot);
  dot = warp_sum(dot);
  if (lane == 0) *out = dot * s.scale;
}

__global__ void weighted_sum_q8_0_kernel(const float* __restrict__ scores, KvQ8_0 v,
                                         float* __restrict__ out, AttentionShape s) {
  const int d = blockIdx.x * blockDim.x + threadIdx.x;
  const int h = blockIdx.y;
  if (d >= s.head_dim) return;
  const int64_t head0 = int64_t(h / (s.n_heads / s.n_kv_heads)) * s.head_dim;
  const int64_t len = int64_t(s.pos0) + 1;
  float acc = 0.0f;
  for (int64_t p = 0; p < len; ++p) acc = fmaf(scores[h * len + p], v.at(p, head0 + d), acc);
  out[h * s.head_dim + d] = acc;
}

}  // namespace

void attention_scores_q8_0(const float* q, const void* k_cache, float* scores,
                           const AttentionShape& s, cudaStream_t stream) {
  const KvQ8_0 k{static_cast<const BlockQ8_0*>(k_cache), int64_t(s.n_kv_heads) * s.head_dim};
  const dim3 grid(grid_for(int64_t(s.pos0) + 1, kScoreWarps), static_cast<unsigned>(s.n_heads));
  scores_q8_0<<<grid, 32 * kScoreWarps, 0, stream>>>(q, k, scores, s);
}

void weighted_sum_q8_0(const float* scores, const void* v_cache, float* out,
                       const AttentionShape& s, cudaStream_t stream) {
  const KvQ8_0 v{static_cast<const BlockQ8_0*>(v_cache), int64_t(s.n_kv_heads) * s.head_dim};
  const dim3 grid(grid_for(s.head_dim, kSumThreads), static_cast<unsigned>(s.n_heads));
  weighted_sum_q8_0_kernel<<<grid, kSumThreads, 0, stream>>>(scores, v, out, s);
}

}  // namespace torchless::cuda
