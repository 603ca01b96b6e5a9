// Operands of the tensor-core GEMM (cuda_gemm.h): F32 activations rounded to F16/BF16, and
// quantised weight rows dequantised to F16 through the block readers of cuda_quant.cuh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "torchless/backends/cuda/cuda_gemm.h"
#include "torchless/backends/cuda/cuda_quant.cuh"

namespace torchless::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

template <typename T>
__global__ void round_kernel(const float* __restrict__ x, T* __restrict__ out, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if constexpr (std::is_same_v<T, __half>) {
    out[i] = __float2half_rn(x[i]);
  } else {
    out[i] = __float2bfloat16_rn(x[i]);
  }
}

// One thread per 8 consecutive elements of a row (cuda_quant.cuh's unit), written as one
// 16-byte store: rows hold whole blocks, so 8 | cols and every chunk is 16-byte aligned.
template <typename Block>
__global__ void dequantize_f16_kernel(const Block* __restrict__ w, int64_t cols, int64_t first_row,
                                      int64_t count, __half* __restrict__ out) {
  constexpr int kChunks = Quant<Block>::kBlock / 8;
  const int64_t chunks_per_row = cols / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count * chunks_per_row) return;
  const int64_t r = i / chunks_per_row, c = i % chunks_per_row;
  const Block* wr = w + (first_row + r) * (cols / Quant<Block>::kBlock);
  float v[8];
  Quant<Block>::dequant8(wr[c / kChunks], int(c % kChunks), v);
  __align__(16) __half h[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) h[k] = __float2half_rn(v[k]);
  *reinterpret_cast<uint4*>(out + r * cols + 8 * c) = *reinterpret_cast<const uint4*>(h);
}

}  // namespace

void round_activations(const float* x, void* out, bool bf16, int64_t n, cudaStream_t stream) {
  if (bf16) {
    round_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, static_cast<__nv_bfloat16*>(out), n);
  } else {
    round_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, static_cast<__half*>(out), n);
  }
}

void dequantize_rows_f16(DType dtype, const std::byte* w, int64_t cols, int64_t first_row,
                         int64_t count, void* out, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!kIsPlain<T>) {  // plain weights go to cuBLAS as they are
      dequantize_f16_kernel<T><<<grid_for(count * cols / 8), kThreads, 0, stream>>>(
          reinterpret_cast<const T*>(w), cols, first_row, count, static_cast<__half*>(out));
    }
  });
}

}  // namespace torchless::cuda
