// Flash attention kernels (cuda_flash_attention.h).
//
// Prefill: a block takes 16 query rows, a row being one (token, query head) of the block's KV
// head, so the heads of a GQA group share every key and value the block loads. Keys and values
// pass through shared memory 32 at a time (converted to F32). Scores: lane j computes the dot
// product of key j with each of its warp's 4 rows (float4 reads: one of the key per 16
// products, the query rows broadcast). Softmax: per row an online max and sum over the tile.
// Values: lanes own head dimensions (d = lane + 32 i) and take each key's weight by shuffle.
//
// Decode: the visible keys are cut into up to 64 chunks of at least 64 keys; block (chunk, KV
// head, 8-head slice of its group) reads each key and value once for all those query heads, one
// key per warp at a time with lanes over head dimensions, and writes per head the chunk's max
// m, sum l and unnormalised output; a second kernel merges the chunks:
// out = sum_c acc_c e^(m_c - M) / sum_c l_c e^(m_c - M), M = max_c m_c.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "torchless/backends/cuda/cuda_flash_attention.h"
#include "torchless/backends/cuda/cuda_warp.cuh"

namespace torchless::cuda {
namespace {

constexpr int kMaxHeadDim = 256;

__device__ inline float cache_elem(const void* cache, bool f16, int64_t i) {
  return f16 ? __half2float(static_cast<const __half*>(cache)[i])
             : static_cast<const float*>(cache)[i];
}

__host__ __device__ inline int64_t first_visible(int64_t pos, int window) {
  return window > 0 ? (pos - window + 1 > 0 ? pos - window + 1 : 0) : 0;
}

// --- prefill ----------------------------------------------------------------------------------

constexpr int kPrefillWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kPrefillRows = kPrefillWarps * kRowsPerWarp;
constexpr int kKeyTile = 32;  // one key per lane in the score phase

// Scores read keys and query rows as float4 over head_dim rounded up to 4 (zero-padded). Each
// lane reads its own key row: a row stride of an odd number of float4s puts the 8 lanes of each
// quarter-warp in distinct bank groups.
__host__ __device__ inline int padded_dim(int head_dim) {
  return (head_dim + 3) / 4 * 4;
}
__host__ __device__ inline int key_stride(int head_dim) {
  return 4 * ((padded_dim(head_dim) / 4) | 1);
}

// Shared memory: keys [kKeyTile][key_stride], query rows [kPrefillRows][padded_dim] (scaled),
// values [kKeyTile][head_dim].
size_t prefill_smem_bytes(int head_dim) {
  const size_t floats = size_t{kKeyTile} * key_stride(head_dim) +
                        size_t{kPrefillRows} * padded_dim(head_dim) + size_t{kKeyTile} * head_dim;
  return floats * sizeof(float);
}

// kPer: head dimensions per lane (head_dim <= 32 * kPer).
template <int kPer>
__global__ void __launch_bounds__(32 * kPrefillWarps)
    flash_prefill_kernel(const float* __restrict__ q, const void* __restrict__ k,
                         const void* __restrict__ v, bool f16, float* __restrict__ out,
                         AttentionShape s) {
  extern __shared__ float4 smem4[];
  const int hd = s.head_dim, hd4 = padded_dim(hd), stride = key_stride(hd);
  float* k_s = reinterpret_cast<float*>(smem4);
  float* q_s = k_s + kKeyTile * stride;
  float* v_s = q_s + kPrefillRows * hd4;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = s.n_heads / s.n_kv_heads;
  const int kvh = blockIdx.y;
  const int64_t n_rows = int64_t(s.n_tokens) * group;
  const int64_t row0 = int64_t(blockIdx.x) * kPrefillRows;
  const int64_t width = int64_t(s.n_heads) * hd;
  const int64_t kv_width = int64_t(s.n_kv_heads) * hd;
  const int64_t kv_col = int64_t(kvh) * hd;

  for (int i = threadIdx.x; i < kPrefillRows * hd4; i += blockDim.x) {
    const int64_t row = row0 + i / hd4;
    const int d = i % hd4;
    float value = 0.0f;
    if (row < n_rows && d < hd) {
      const int64_t h = int64_t(kvh) * group + row % group;
      value = q[(row / group) * width + h * hd + d] * s.scale;
    }
    q_s[i] = value;
  }
  // The warp's rows: position and first visible key (position -1: past the last row).
  int64_t pos[kRowsPerWarp], lo[kRowsPerWarp];
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kPer];
#pragma unroll
  for (int j = 0; j < kRowsPerWarp; ++j) {
    const int64_t row = row0 + warp * kRowsPerWarp + j;
    pos[j] = row < n_rows ? s.pos0 + row / group : -1;
    lo[j] = first_visible(pos[j], s.window);
    m[j] = -INFINITY;
    l[j] = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) acc[j][i] = 0.0f;
  }
  const int64_t last_row = min(row0 + kPrefillRows, n_rows) - 1;
  const int64_t key_lo = first_visible(s.pos0 + row0 / group, s.window);
  const int64_t key_hi = s.pos0 + last_row / group;
  const float4* q_warp = reinterpret_cast<const float4*>(q_s + warp * kRowsPerWarp * hd4);

  for (int64_t k0 = key_lo; k0 <= key_hi; k0 += kKeyTile) {
    __syncthreads();  // q_s written; the previous tile consumed
    // Warp w loads rows w, w + 4, ...: lanes along a row (coalesced), no index division.
    for (int j = warp; j < kKeyTile; j += kPrefillWarps) {
      const int64_t p = k0 + j;
      const int64_t at = p * kv_width + kv_col;
      for (int d = lane; d < hd4; d += 32) {
        const bool load = p <= key_hi && d < hd;
        k_s[j * stride + d] = load ? cache_elem(k, f16, at + d) : 0.0f;
        if (d < hd) v_s[j * hd + d] = load ? cache_elem(v, f16, at + d) : 0.0f;
      }
    }
    __syncthreads();

    float score[kRowsPerWarp];
#pragma unroll
    for (int j = 0; j < kRowsPerWarp; ++j) score[j] = 0.0f;
    const float4* key = reinterpret_cast<const float4*>(k_s + lane * stride);
    for (int c = 0; c < hd4 / 4; ++c) {
      const float4 kc = key[c];
#pragma unroll
      for (int j = 0; j < kRowsPerWarp; ++j) {
        const float4 qc = q_warp[j * (hd4 / 4) + c];  // the same address in every lane
        score[j] = fmaf(qc.x, kc.x, score[j]);
        score[j] = fmaf(qc.y, kc.y, score[j]);
        score[j] = fmaf(qc.z, kc.z, score[j]);
        score[j] = fmaf(qc.w, kc.w, score[j]);
      }
    }
    const int64_t p = k0 + lane;
    float weight[kRowsPerWarp];
#pragma unroll
    for (int j = 0; j < kRowsPerWarp; ++j) {
      const bool visible = p >= lo[j] && p <= pos[j];
      const float sj = visible ? score[j] : -INFINITY;
      const float m_new = fmaxf(m[j], warp_max(sj));
      // A row that has seen no visible key yet keeps m = -inf, l = 0 and a zero accumulator.
      const float correction = m_new == -INFINITY ? 1.0f : expf(m[j] - m_new);
      weight[j] = visible ? expf(sj - m_new) : 0.0f;
      l[j] = l[j] * correction + warp_sum(weight[j]);
      m[j] = m_new;
#pragma unroll
      for (int i = 0; i < kPer; ++i) acc[j][i] *= correction;
    }
    const int n_keys = int(min(int64_t{kKeyTile}, key_hi - k0 + 1));
    for (int jj = 0; jj < n_keys; ++jj) {
      float value[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int d = lane + 32 * i;
        value[i] = d < hd ? v_s[jj * hd + d] : 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kRowsPerWarp; ++j) {
        const float w = __shfl_sync(0xffffffffu, weight[j], jj);
#pragma unroll
        for (int i = 0; i < kPer; ++i) acc[j][i] = fmaf(w, value[i], acc[j][i]);
      }
    }
  }

#pragma unroll
  for (int j = 0; j < kRowsPerWarp; ++j) {
    if (pos[j] < 0) continue;
    const int64_t row = row0 + warp * kRowsPerWarp + j;
    const int64_t h = int64_t(kvh) * group + row % group;
    float* o = out + (row / group) * width + h * hd;
    const float inv = 1.0f / l[j];  // the query's own key is always visible: l > 0
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) o[d] = acc[j][i] * inv;
    }
  }
}

// --- decode -----------------------------------------------------------------------------------

constexpr int kDecodeWarps = 4;
constexpr int kDecodeHeads = 8;  // query heads per block: a GQA group, or an 8-head slice of it
constexpr int kKeysPerSplit = 64;
constexpr int kMaxSplits = 64;

struct Splits {
  int count;  // chunks of the visible keys
  int keys;   // keys per chunk (the last may have fewer, never none)
};

int64_t max_splits(int n_heads, int head_dim) {
  const int64_t fit = int64_t(kDecodePartialFloats) / (int64_t{n_heads} * (head_dim + 2));
  return std::min<int64_t>(kMaxSplits, fit);
}

// ceil(visible / count) keys each: with count <= ceil(visible / 64), count (count - 1) < visible,
// so (count - 1) chunks never cover every key and no chunk is empty.
Splits decode_splits(const AttentionShape& s) {
  const int64_t visible = s.pos0 - first_visible(s.pos0, s.window) + 1;
  const int64_t count = std::min<int64_t>(max_splits(s.n_heads, s.head_dim),
                                          (visible + kKeysPerSplit - 1) / kKeysPerSplit);
  return {static_cast<int>(count), static_cast<int>((visible + count - 1) / count)};
}

// Partial results per (query head, chunk): m, l, then head_dim accumulated values.
__device__ inline float* partial_of(float* partial, int head, int n_splits, int split, int hd) {
  return partial + (int64_t(head) * n_splits + split) * (hd + 2);
}

template <int kPer>
__global__ void __launch_bounds__(32 * kDecodeWarps)
    flash_decode_kernel(const float* __restrict__ q, const void* __restrict__ k,
                        const void* __restrict__ v, bool f16, float* __restrict__ partial,
                        AttentionShape s, int n_splits, int chunk) {
  __shared__ float q_s[kDecodeHeads][kMaxHeadDim];  // scaled; zero past head_dim
  __shared__ float acc_s[kDecodeWarps][kDecodeHeads][kMaxHeadDim];
  __shared__ float m_s[kDecodeWarps][kDecodeHeads], l_s[kDecodeWarps][kDecodeHeads];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int hd = s.head_dim;
  const int group = s.n_heads / s.n_kv_heads;
  const int slices = (group + kDecodeHeads - 1) / kDecodeHeads;
  const int kvh = blockIdx.y / slices;
  const int h0 = kvh * group + (blockIdx.y % slices) * kDecodeHeads;
  const int n_h = min(kDecodeHeads, (kvh + 1) * group - h0);
  for (int i = threadIdx.x; i < kDecodeHeads * kMaxHeadDim; i += blockDim.x) {
    const int j = i / kMaxHeadDim, d = i % kMaxHeadDim;
    q_s[j][d] = j < n_h && d < hd ? q[int64_t(h0 + j) * hd + d] * s.scale : 0.0f;
  }
  __syncthreads();

  const int64_t first = first_visible(s.pos0, s.window) + int64_t(blockIdx.x) * chunk;
  const int64_t last = min(int64_t(s.pos0), first + chunk - 1);
  const int64_t kv_width = int64_t(s.n_kv_heads) * hd;
  const int64_t kv_col = int64_t(kvh) * hd;
  float m[kDecodeHeads], l[kDecodeHeads], acc[kDecodeHeads][kPer];
#pragma unroll
  for (int j = 0; j < kDecodeHeads; ++j) {
    m[j] = -INFINITY;
    l[j] = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) acc[j][i] = 0.0f;
  }
  for (int64_t p = first + warp; p <= last; p += kDecodeWarps) {
    const int64_t at = p * kv_width + kv_col;
    float key[kPer], value[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + 32 * i;
      key[i] = d < hd ? cache_elem(k, f16, at + d) : 0.0f;
      value[i] = d < hd ? cache_elem(v, f16, at + d) : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kDecodeHeads; ++j) {
      if (j >= n_h) break;  // uniform across the block
      float dot = 0.0f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) dot = fmaf(q_s[j][lane + 32 * i], key[i], dot);
      const float score = warp_sum(dot);
      const float m_new = fmaxf(m[j], score);
      const float correction = expf(m[j] - m_new);  // 0 for the first key (m = -inf)
      const float w = expf(score - m_new);
      l[j] = l[j] * correction + w;
      m[j] = m_new;
#pragma unroll
      for (int i = 0; i < kPer; ++i) acc[j][i] = fmaf(w, value[i], acc[j][i] * correction);
    }
  }

#pragma unroll
  for (int j = 0; j < kDecodeHeads; ++j) {
#pragma unroll
    for (int i = 0; i < kPer; ++i) acc_s[warp][j][lane + 32 * i] = acc[j][i];
    if (lane == 0) {
      m_s[warp][j] = m[j];
      l_s[warp][j] = l[j];
    }
  }
  __syncthreads();
  // Merge the warps (a warp with no key of the chunk has m = -inf and weight 0).
  for (int i = threadIdx.x; i < n_h * hd; i += blockDim.x) {
    const int j = i / hd, d = i % hd;
    float m_all = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) m_all = fmaxf(m_all, m_s[w][j]);
    float l_all = 0.0f, sum = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float factor = m_s[w][j] == -INFINITY ? 0.0f : expf(m_s[w][j] - m_all);
      l_all += l_s[w][j] * factor;
      sum += acc_s[w][j][d] * factor;
    }
    float* part = partial_of(partial, h0 + j, n_splits, blockIdx.x, hd);
    part[2 + d] = sum;
    if (d == 0) {
      part[0] = m_all;
      part[1] = l_all;
    }
  }
}

// One block per query head: merges its n_splits chunks.
__global__ void flash_decode_merge_kernel(float* __restrict__ partial, float* __restrict__ out,
                                          int n_splits, int hd) {
  const int h = blockIdx.x;
  float m_all = -INFINITY;
  for (int c = 0; c < n_splits; ++c)
    m_all = fmaxf(m_all, partial_of(partial, h, n_splits, c, hd)[0]);
  float l_all = 0.0f;
  for (int c = 0; c < n_splits; ++c) {
    const float* part = partial_of(partial, h, n_splits, c, hd);
    l_all += part[1] * expf(part[0] - m_all);
  }
  const float inv = 1.0f / l_all;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float sum = 0.0f;
    for (int c = 0; c < n_splits; ++c) {
      const float* part = partial_of(partial, h, n_splits, c, hd);
      sum += part[2 + d] * expf(part[0] - m_all);
    }
    out[int64_t(h) * hd + d] = sum * inv;
  }
}

// f(std::integral_constant<int, kPer>) with kPer = head dimensions per lane.
template <typename F>
void with_dims_per_lane(int head_dim, F&& f) {
  if (head_dim <= 32) {
    f(std::integral_constant<int, 1>{});
  } else if (head_dim <= 64) {
    f(std::integral_constant<int, 2>{});
  } else if (head_dim <= 128) {
    f(std::integral_constant<int, 4>{});
  } else {
    f(std::integral_constant<int, 8>{});
  }
}

}  // namespace

bool flash_head_dim_supported(int head_dim) {
  return head_dim <= kMaxHeadDim;
}

void flash_attention(const float* q, const void* k_cache, const void* v_cache, bool f16, float* out,
                     const AttentionShape& s, cudaStream_t stream) {
  const int64_t rows = int64_t{s.n_tokens} * (s.n_heads / s.n_kv_heads);
  const dim3 grid(static_cast<unsigned>((rows + kPrefillRows - 1) / kPrefillRows),
                  static_cast<unsigned>(s.n_kv_heads));
  const size_t smem = prefill_smem_bytes(s.head_dim);
  with_dims_per_lane(s.head_dim, [&](auto per) {
    constexpr int kPer = decltype(per)::value;
    if (smem > 48 * 1024) {
      // Above the default limit, shared memory must be asked for; a failure shows at the launch.
      (void)cudaFuncSetAttribute(flash_prefill_kernel<kPer>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(smem));
    }
    flash_prefill_kernel<kPer>
        <<<grid, 32 * kPrefillWarps, smem, stream>>>(q, k_cache, v_cache, f16, out, s);
  });
}

bool flash_decode_fits(int n_heads, int head_dim) {
  return max_splits(n_heads, head_dim) >= 1;
}

void flash_decode(const float* q, const void* k_cache, const void* v_cache, bool f16,
                  float* partial, float* out, const AttentionShape& s, cudaStream_t stream) {
  const Splits splits = decode_splits(s);
  const int group = s.n_heads / s.n_kv_heads;
  const int slices = (group + kDecodeHeads - 1) / kDecodeHeads;
  const dim3 grid(static_cast<unsigned>(splits.count),
                  static_cast<unsigned>(s.n_kv_heads * slices));
  with_dims_per_lane(s.head_dim, [&](auto per) {
    constexpr int kPer = decltype(per)::value;
    flash_decode_kernel<kPer><<<grid, 32 * kDecodeWarps, 0, stream>>>(
        q, k_cache, v_cache, f16, partial, s, splits.count, splits.keys);
  });
  flash_decode_merge_kernel<<<static_cast<unsigned>(s.n_heads), 128, 0, stream>>>(
      partial, out, splits.count, s.head_dim);
}

}  // namespace torchless::cuda
