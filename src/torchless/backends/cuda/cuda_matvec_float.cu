// Mat-vec of F32, F16 and BF16 weights with F32 activations: one warp per row, each lane
// reading 16 bytes of the row at a time (8 halves, or 4 floats) and the matching activations as
// float4, several loads in flight per lane; F32 accumulation, warp-shuffle reduction.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "torchless/backends/cuda/cuda_act_q8.cuh"
#include "torchless/backends/cuda/cuda_decode_kernels.h"

namespace torchless::cuda {
namespace {

constexpr int kRowsPerBlock = 4;

__device__ __forceinline__ float2 to_float2(uint32_t bits, const __half*) {
  return __half22float2(*reinterpret_cast<const __half2*>(&bits));
}
__device__ __forceinline__ float2 to_float2(uint32_t bits, const __nv_bfloat16*) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&bits));
}

// acc += the 16 bytes `raw` of weights times the activations at x (16-byte aligned).
__device__ __forceinline__ float dot16(uint4 raw, const float4* x, float acc, const float*) {
  const float4 a = x[0];
  const float4 w = *reinterpret_cast<const float4*>(&raw);
  acc = fmaf(w.x, a.x, acc);
  acc = fmaf(w.y, a.y, acc);
  acc = fmaf(w.z, a.z, acc);
  return fmaf(w.w, a.w, acc);
}
template <typename Half>
__device__ __forceinline__ float dot16(uint4 raw, const float4* x, float acc, const Half* tag) {
  const float4 a = x[0], b = x[1];
  const float2 w0 = to_float2(raw.x, tag), w1 = to_float2(raw.y, tag);
  const float2 w2 = to_float2(raw.z, tag), w3 = to_float2(raw.w, tag);
  acc = fmaf(w0.x, a.x, acc);
  acc = fmaf(w0.y, a.y, acc);
  acc = fmaf(w1.x, a.z, acc);
  acc = fmaf(w1.y, a.w, acc);
  acc = fmaf(w2.x, b.x, acc);
  acc = fmaf(w2.y, b.y, acc);
  acc = fmaf(w3.x, b.z, acc);
  return fmaf(w3.y, b.w, acc);
}

template <typename T>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    matvec_float_kernel(const T* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                        int64_t rows, int64_t cols) {
  constexpr int kPer = 16 / sizeof(T);  // elements per 16-byte chunk
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int64_t t = blockIdx.y;
  const uint4* wr = reinterpret_cast<const uint4*>(w + row * cols);
  const float4* xt = reinterpret_cast<const float4*>(x + t * cols);
  const int64_t chunks = cols / kPer;
  float acc = 0.0f;
#pragma unroll 4
  for (int64_t c = lane; c < chunks; c += 32) {
    acc = dot16(wr[c], xt + c * (kPer / 4), acc, static_cast<const T*>(nullptr));
  }
  acc = warp_sum(acc);
  if (lane == 0) y[t * rows + row] = acc;
}

size_t element_size(DType dtype) {
  return dtype == DType::F32 ? 4 : dtype == DType::F16 || dtype == DType::BF16 ? 2 : 0;
}

}  // namespace

bool matvec_float_supports(DType dtype, const std::byte* w, const float* x, int64_t cols) {
  const size_t size = element_size(dtype);
  return size != 0 && (static_cast<size_t>(cols) * size) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(w) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

void matvec_float(DType dtype, const std::byte* w, const float* x, float* y, int64_t rows,
                  int64_t cols, int64_t n, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock),
                  static_cast<unsigned>(n));
  const dim3 block(32 * kRowsPerBlock);
  if (dtype == DType::F32) {
    matvec_float_kernel<float>
        <<<grid, block, 0, stream>>>(reinterpret_cast<const float*>(w), x, y, rows, cols);
  } else if (dtype == DType::F16) {
    matvec_float_kernel<__half>
        <<<grid, block, 0, stream>>>(reinterpret_cast<const __half*>(w), x, y, rows, cols);
  } else {
    matvec_float_kernel<__nv_bfloat16>
        <<<grid, block, 0, stream>>>(reinterpret_cast<const __nv_bfloat16*>(w), x, y, rows, cols);
  }
}

}  // namespace torchless::cuda
