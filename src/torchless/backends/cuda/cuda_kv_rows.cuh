#pragma once
// Device-side readers of KV cache rows, one per cache type (F32, F16, Q8_0), and the warp
// reductions the KV kernels share. A cache row holds n_kv_heads * head_dim values; a Q8_0 row is
// blocks of 32 along it, and a head starts on a block (head_dim % 32 == 0, op_checks.h), so
// lane l of a warp reading dimension 32 i + l of a head reads byte l of one block.
#include <cuda_fp16.h>

#include <cstdint>

#include "torchless/backends/cuda/cuda_warp.cuh"
#include "torchless/core/quant_blocks.h"

namespace torchless::cuda {

// Element e of row `row` of a cache with `row_elems` values per row.
struct KvF32 {
  const float* data;
  int64_t row_elems;
  __device__ float at(int64_t row, int64_t e) const { return data[row * row_elems + e]; }
};

struct KvF16 {
  const __half* data;
  int64_t row_elems;
  __device__ float at(int64_t row, int64_t e) const {
    return __half2float(data[row * row_elems + e]);
  }
};

// As dequantize_q8_0 (core/quant.cpp): d * q in F32.
struct KvQ8_0 {
  const BlockQ8_0* data;
  int64_t row_elems;
  __device__ float at(int64_t row, int64_t e) const {
    const BlockQ8_0& b = data[row * (row_elems / 32) + e / 32];
    return __half2float(__ushort_as_half(b.d)) * float(b.qs[e % 32]);
  }
};

}  // namespace torchless::cuda
