// Element-wise, row-wise, RoPE, KV-store and decode-attention-primitive kernels of the CUDA
// backend. Row-wise ops run one block per row. (The fused attention op: cuda_flash_attention.cu.)
#include <cuda_fp16.h>

#include <cmath>

#include "torchless/backends/cuda/cuda_kernels.h"
#include "torchless/backends/cuda/cuda_warp.cuh"

namespace torchless::cuda {
namespace {

constexpr int kRowThreads = 256;
constexpr int kElemThreads = 256;

unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// Sum (or max) over a block of kRowThreads threads; every thread gets the result.
template <bool kMax>
__device__ float block_reduce(float v) {
  __shared__ float partial[kRowThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float r = partial[0];
  for (int i = 1; i < kRowThreads / 32; ++i) r = kMax ? fmaxf(r, partial[i]) : r + partial[i];
  return r;
}

__global__ void rmsnorm_kernel(const float* x, const float* w, float* y, int64_t cols, float eps) {
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) ss = fmaf(xr[c], xr[c], ss);
  const float scale = 1.0f / sqrtf(block_reduce<false>(ss) / float(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) yr[c] = xr[c] * scale * w[c];
}

__global__ void softmax_kernel(float* x, int64_t cols) {
  float* xr = x + blockIdx.x * cols;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) m = fmaxf(m, xr[c]);
  m = block_reduce<true>(m);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) {
    const float e = expf(xr[c] - m);
    xr[c] = e;
    s += e;
  }
  const float inv = 1.0f / block_reduce<false>(s);
  for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) xr[c] *= inv;
}

__device__ inline float silu_of(float v) {
  return v / (1.0f + expf(-v));
}

__global__ void silu_kernel(float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = silu_of(x[i]);
}

__global__ void silu_mul_kernel(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = silu_of(gate[i]) * up[i];
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n, int64_t b_n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i % b_n];
}

// One thread per rotated pair. Angles in double, as the CPU reference: pos * inv_freq loses
// precision in float at large positions.
__global__ void rope_kernel(float* x, const float* inv_freq, int64_t n_tokens, int n_heads,
                            int head_dim, int pos0, bool neox) {
  const int half = head_dim / 2;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * n_heads * half) return;
  const int pair = int(i % half);
  const int64_t th = i / half;  // token * n_heads + head
  const int64_t t = th / n_heads;
  double s, c;
  sincos(double(pos0 + t) * double(inv_freq[pair]), &s, &c);
  float* v = x + th * head_dim;
  const int first = neox ? pair : 2 * pair;
  const int second = first + (neox ? half : 1);
  const float a = v[first], b = v[second];
  const float cf = float(c), sf = float(s);
  v[first] = a * cf - b * sf;
  v[second] = a * sf + b * cf;
}

__device__ inline float cache_elem(const void* cache, bool f16, int64_t i) {
  return f16 ? __half2float(static_cast<const __half*>(cache)[i])
             : static_cast<const float*>(cache)[i];
}

__global__ void kv_store_kernel(const float* src, void* cache, bool f16, int64_t n,
                                int64_t offset) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (f16) {
    static_cast<__half*>(cache)[offset + i] = __float2half_rn(src[i]);
  } else {
    static_cast<float*>(cache)[offset + i] = src[i];
  }
}

__device__ inline int64_t first_visible(int64_t pos, int window) {
  return window > 0 ? max(int64_t(0), pos - window + 1) : 0;
}

constexpr int kScoreWarps = 4;

// One warp per (head, key position).
__global__ void attention_scores_kernel(const float* q, const void* k, bool f16, float* scores,
                                        AttentionShape s) {
  const int lane = threadIdx.x % 32;
  const int64_t p = int64_t(blockIdx.x) * kScoreWarps + threadIdx.x / 32;
  const int h = blockIdx.y;
  const int64_t len = s.pos0 + 1;
  if (p >= len) return;
  float* out = scores + h * len + p;
  if (p < first_visible(s.pos0, s.window)) {
    if (lane == 0) *out = -INFINITY;
    return;
  }
  const int kvh = h / (s.n_heads / s.n_kv_heads);
  const int64_t row = int64_t(s.n_kv_heads) * s.head_dim;
  const int64_t base = p * row + int64_t(kvh) * s.head_dim;
  float dot = 0.0f;
  for (int d = lane; d < s.head_dim; d += 32)
    dot = fmaf(q[h * s.head_dim + d], cache_elem(k, f16, base + d), dot);
  dot = warp_sum(dot);
  if (lane == 0) *out = dot * s.scale;
}

// One thread per (head, dim).
__global__ void weighted_sum_kernel(const float* scores, const void* v, bool f16, float* out,
                                    AttentionShape s) {
  const int d = blockIdx.x * blockDim.x + threadIdx.x;
  const int h = blockIdx.y;
  if (d >= s.head_dim) return;
  const int kvh = h / (s.n_heads / s.n_kv_heads);
  const int64_t len = s.pos0 + 1;
  const int64_t row = int64_t(s.n_kv_heads) * s.head_dim;
  float acc = 0.0f;
  for (int64_t p = 0; p < len; ++p) {
    acc =
        fmaf(scores[h * len + p], cache_elem(v, f16, p * row + int64_t(kvh) * s.head_dim + d), acc);
  }
  out[h * s.head_dim + d] = acc;
}

}  // namespace

void rmsnorm(const float* x, const float* weight, float* y, int64_t rows, int64_t cols, float eps,
             cudaStream_t stream) {
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, weight, y, cols, eps);
}

void softmax(float* x, int64_t rows, int64_t cols, cudaStream_t stream) {
  softmax_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, cols);
}

void silu(float* x, int64_t n, cudaStream_t stream) {
  silu_kernel<<<blocks_for(n, kElemThreads), kElemThreads, 0, stream>>>(x, n);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
  silu_mul_kernel<<<blocks_for(n, kElemThreads), kElemThreads, 0, stream>>>(gate, up, out, n);
}

void add(const float* a, const float* b, float* out, int64_t n, int64_t b_n, cudaStream_t stream) {
  add_kernel<<<blocks_for(n, kElemThreads), kElemThreads, 0, stream>>>(a, b, out, n, b_n);
}

void rope(float* x, const float* inv_freq, int64_t n_tokens, int n_heads, int head_dim, int pos0,
          bool neox, cudaStream_t stream) {
  const int64_t pairs = n_tokens * n_heads * (head_dim / 2);
  rope_kernel<<<blocks_for(pairs, kElemThreads), kElemThreads, 0, stream>>>(
      x, inv_freq, n_tokens, n_heads, head_dim, pos0, neox);
}

void kv_store(const float* src, void* cache, bool f16, int64_t n, int64_t cols, int64_t pos0,
              cudaStream_t stream) {
  kv_store_kernel<<<blocks_for(n * cols, kElemThreads), kElemThreads, 0, stream>>>(
      src, cache, f16, n * cols, pos0 * cols);
}

void attention_scores(const float* q, const void* k_cache, bool f16, float* scores,
                      const AttentionShape& s, cudaStream_t stream) {
  const dim3 grid(blocks_for(int64_t(s.pos0) + 1, kScoreWarps), static_cast<unsigned>(s.n_heads));
  attention_scores_kernel<<<grid, 32 * kScoreWarps, 0, stream>>>(q, k_cache, f16, scores, s);
}

void weighted_sum(const float* scores, const void* v_cache, bool f16, float* out,
                  const AttentionShape& s, cudaStream_t stream) {
  constexpr int kThreads = 64;
  const dim3 grid(blocks_for(s.head_dim, kThreads), static_cast<unsigned>(s.n_heads));
  weighted_sum_kernel<<<grid, kThreads, 0, stream>>>(scores, v_cache, f16, out, s);
}

}  // namespace torchless::cuda
