// Fused causal attention over a KV cache of F32, F16 or Q8_0 rows, contiguous (a session's
// cache) or paged (the continuous-batching pool: each token finds its sequence's rows through
// the block table). One block per (token, head); warp w takes the visible positions lo + w,
// lo + w + 4, ... with an online softmax (running max m, sum l, accumulator acc in registers),
// and the 4 warps merge at the end. Every quantity a token's result depends on is its own: the
// same bits whatever else is in the batch and wherever the token sits in it.
#include <cuda_fp16.h>

#include "torchless/backends/cuda/cuda_kv_kernels.h"
#include "torchless/backends/cuda/cuda_kv_rows.cuh"

namespace torchless::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kDimsPerLane = kMaxHeadDim / 32;

template <typename Kv, bool kPaged>
__global__ void __launch_bounds__(32 * kWarps)
    kv_attention_kernel(const float* __restrict__ q, Kv k, Kv v, float* __restrict__ out,
                        KvAttentionShape s, KvLayout layout) {
  __shared__ float q_s[kMaxHeadDim];
  __shared__ float acc_s[kWarps][kMaxHeadDim];
  __shared__ float m_s[kWarps], l_s[kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t t = blockIdx.x / s.n_heads;
  const int h = blockIdx.x % s.n_heads;
  const int64_t width = int64_t(s.n_heads) * s.head_dim;
  const float* qr = q + t * width + int64_t(h) * s.head_dim;
  for (int d = threadIdx.x; d < s.head_dim; d += blockDim.x) q_s[d] = qr[d];
  __syncthreads();

  const int32_t* table = nullptr;
  int64_t pos = int64_t(layout.pos0) + t;
  if constexpr (kPaged) {
    table = layout.tables + int64_t(layout.tokens[2 * t]) * layout.max_blocks;
    pos = layout.tokens[2 * t + 1];
  }
  const int64_t lo = s.window > 0 ? max(int64_t(0), pos - s.window + 1) : 0;
  const int64_t head0 = int64_t(h / (s.n_heads / s.n_kv_heads)) * s.head_dim;
  float m = -INFINITY, l = 0.0f;
  float acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.0f;
  for (int64_t p = lo + warp; p <= pos; p += kWarps) {
    int64_t row = p;
    if constexpr (kPaged) {
      row = int64_t(table[p / layout.block_size]) * layout.block_size + p % layout.block_size;
    }
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < s.head_dim) dot = fmaf(q_s[d], k.at(row, head0 + d), dot);
    }
    const float score = warp_sum(dot) * s.scale;
    const float m_new = fmaxf(m, score);
    const float correction = expf(m - m_new);  // 0 for the first position (m = -inf)
    const float weight = expf(score - m_new);
    l = l * correction + weight;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      const float vd = d < s.head_dim ? v.at(row, head0 + d) : 0.0f;
      acc[i] = acc[i] * correction + weight * vd;
    }
    m = m_new;
  }

#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < s.head_dim) acc_s[warp][d] = acc[i];
  }
  if (lane == 0) {
    m_s[warp] = m;
    l_s[warp] = l;
  }
  __syncthreads();
  float m_all = m_s[0];
  for (int w = 1; w < kWarps; ++w) m_all = fmaxf(m_all, m_s[w]);
  float l_all = 0.0f, factor[kWarps];
  for (int w = 0; w < kWarps; ++w) {
    factor[w] = m_s[w] == -INFINITY ? 0.0f : expf(m_s[w] - m_all);  // a warp without positions
    l_all += l_s[w] * factor[w];
  }
  float* o = out + t * width + int64_t(h) * s.head_dim;
  for (int d = threadIdx.x; d < s.head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) sum += acc_s[w][d] * factor[w];
    o[d] = sum / l_all;
  }
}

template <typename Kv>
void launch(const float* q, Kv k, Kv v, float* out, const KvAttentionShape& s,
            const KvLayout& layout, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(s.n_tokens) * static_cast<unsigned>(s.n_heads);
  if (layout.tokens != nullptr) {
    kv_attention_kernel<Kv, true><<<blocks, 32 * kWarps, 0, stream>>>(q, k, v, out, s, layout);
  } else {
    kv_attention_kernel<Kv, false><<<blocks, 32 * kWarps, 0, stream>>>(q, k, v, out, s, layout);
  }
}

}  // namespace

bool kv_attention_head_dim_supported(int head_dim) {
  return head_dim <= kMaxHeadDim;
}

void kv_attention(DType cache_type, const float* q, const void* k, const void* v, float* out,
                  const KvAttentionShape& s, const KvLayout& layout, cudaStream_t stream) {
  const int64_t row = int64_t(s.n_kv_heads) * s.head_dim;
  if (cache_type == DType::Q8_0) {
    launch(q, KvQ8_0{static_cast<const BlockQ8_0*>(k), row},
           KvQ8_0{static_cast<const BlockQ8_0*>(v), row}, out, s, layout, stream);
  } else if (cache_type == DType::F16) {
    launch(q, KvF16{static_cast<const __half*>(k), row}, KvF16{static_cast<const __half*>(v), row},
           out, s, layout, stream);
  } else {
    launch(q, KvF32{static_cast<const float*>(k), row}, KvF32{static_cast<const float*>(v), row},
           out, s, layout, stream);
  }
}

}  // namespace torchless::cuda
