// Stores of F32 rows into KV caches (contiguous or paged) as F32, F16 or Q8_0. The Q8_0 store
// quantises each block of 32 with one warp, computing what quantize_q8_0 (core/quant.cpp) does in
// the same F32 operations, so a row stored here is the same bytes as one stored by the CPU.
#include <cuda_fp16.h>

#include "torchless/backends/cuda/cuda_kv_kernels.h"
#include "torchless/backends/cuda/cuda_kv_rows.cuh"

namespace torchless::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

__device__ inline int64_t dest_row(const int32_t* slots, int64_t pos0, int64_t i) {
  return slots != nullptr ? int64_t(slots[i]) : pos0 + i;
}

__device__ inline void store_value(float* p, float v) {
  *p = v;
}
__device__ inline void store_value(__half* p, float v) {
  *p = __float2half_rn(v);
}

// One thread per element.
template <typename T>
__global__ void kv_store_plain(const float* __restrict__ src, T* __restrict__ cache,
                               const int32_t* __restrict__ slots, int64_t n, int64_t cols,
                               int64_t pos0) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * cols) return;
  const int64_t row = i / cols;
  store_value(cache + dest_row(slots, pos0, row) * cols + i % cols, src[i]);
}

// One warp per block of 32: lane l quantises element l.
__global__ void kv_store_q8_0(const float* __restrict__ src, BlockQ8_0* __restrict__ cache,
                              const int32_t* __restrict__ slots, int64_t n, int64_t cols,
                              int64_t pos0) {
  const int lane = threadIdx.x % 32;
  const int64_t block = int64_t(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32;
  const int64_t per_row = cols / 32;
  if (block >= n * per_row) return;  // whole warps leave together
  const int64_t row = block / per_row, j = block % per_row;
  const float x = src[row * cols + j * 32 + lane];
  const float amax = warp_max(fabsf(x));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const int q = max(-127, min(127, __float2int_rn(x * id)));
  BlockQ8_0& out = cache[dest_row(slots, pos0, row) * per_row + j];
  out.qs[lane] = static_cast<int8_t>(q);
  if (lane == 0) out.d = __half_as_ushort(__float2half_rn(d));
}

}  // namespace

void kv_store_rows(DType cache_type, const float* src, void* cache, const int32_t* slots, int64_t n,
                   int64_t cols, int64_t pos0, cudaStream_t stream) {
  if (cache_type == DType::Q8_0) {
    kv_store_q8_0<<<grid_for(n * (cols / 32), kThreads / 32), kThreads, 0, stream>>>(
        src, static_cast<BlockQ8_0*>(cache), slots, n, cols, pos0);
  } else if (cache_type == DType::F16) {
    kv_store_plain<<<grid_for(n * cols, kThreads), kThreads, 0, stream>>>(
        src, static_cast<__half*>(cache), slots, n, cols, pos0);
  } else {
    kv_store_plain<<<grid_for(n * cols, kThreads), kThreads, 0, stream>>>(
        src, static_cast<float*>(cache), slots, n, cols, pos0);
  }
}

}  // namespace torchless::cuda
