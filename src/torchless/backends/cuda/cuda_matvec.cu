// Mat-vec over weights in their own layout (every dtype of cuda_quant.cuh), and the
// dequantisation of weight rows to F32 (cuBLAS tiles, embedding lookups).
#include <type_traits>

#include "torchless/backends/cuda/cuda_kernels.h"
#include "torchless/backends/cuda/cuda_quant.cuh"
#include "torchless/backends/cuda/cuda_warp.cuh"

namespace torchless::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

// One warp per (row, token): lanes take 8-element chunks of the row in turn, so a warp reads
// consecutive blocks and each byte of the row once.
template <typename Block>
__global__ void matvec_blocks(const Block* __restrict__ w, const float* __restrict__ x,
                              float* __restrict__ y, int64_t rows, int64_t cols) {
  constexpr int kChunks = Quant<Block>::kBlock / 8;
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int64_t t = blockIdx.y;
  const int64_t blocks = cols / Quant<Block>::kBlock;
  const Block* wr = w + row * blocks;
  const float* xt = x + t * cols;
  float acc = 0.0f;
  for (int64_t c = lane; c < blocks * kChunks; c += 32) {
    float v[8];
    Quant<Block>::dequant8(wr[c / kChunks], int(c % kChunks), v);
    const float* xc = xt + 8 * c;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc = fmaf(v[i], xc[i], acc);
  }
  acc = warp_sum(acc);
  if (lane == 0) y[t * rows + row] = acc;
}

// Plain element types: 16-byte loads when rows allow (kVector), else one element per lane.
template <typename T, bool kVector>
__global__ void matvec_plain(const T* __restrict__ w, const float* __restrict__ x,
                             float* __restrict__ y, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int64_t t = blockIdx.y;
  const T* wr = w + row * cols;
  const float* xt = x + t * cols;
  float acc = 0.0f;
  if constexpr (kVector) {
    constexpr int kPer = 16 / sizeof(T);
    for (int64_t c = lane; c < cols / kPer; c += 32) {
      const uint4 raw = reinterpret_cast<const uint4*>(wr)[c];
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int i = 0; i < kPer; ++i) acc = fmaf(load_elem(e, i), xt[kPer * c + i], acc);
    }
  } else {
    for (int64_t c = lane; c < cols; c += 32) acc = fmaf(load_elem(wr, c), xt[c], acc);
  }
  acc = warp_sum(acc);
  if (lane == 0) y[t * rows + row] = acc;
}

template <typename Block>
__global__ void dequantize_blocks(const Block* __restrict__ w, int64_t cols, int64_t first_row,
                                  int64_t count, const int32_t* __restrict__ ids,
                                  float* __restrict__ out) {
  constexpr int kChunks = Quant<Block>::kBlock / 8;
  const int64_t chunks_per_row = cols / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count * chunks_per_row) return;
  const int64_t r = i / chunks_per_row, c = i % chunks_per_row;
  const int64_t src_row = ids != nullptr ? ids[r] : first_row + r;
  const Block* wr = w + src_row * (cols / Quant<Block>::kBlock);
  float v[8];
  Quant<Block>::dequant8(wr[c / kChunks], int(c % kChunks), v);
#pragma unroll
  for (int k = 0; k < 8; ++k) out[r * cols + 8 * c + k] = v[k];
}

template <typename T>
__global__ void dequantize_plain(const T* __restrict__ w, int64_t cols, int64_t first_row,
                                 int64_t count, const int32_t* __restrict__ ids,
                                 float* __restrict__ out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count * cols) return;
  const int64_t r = i / cols, c = i % cols;
  const int64_t src_row = ids != nullptr ? ids[r] : first_row + r;
  out[i] = load_elem(w, src_row * cols + c);
}

unsigned grid_for(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace

bool kernel_supports(DType dtype) {
  return dispatch_dtype(dtype, [](auto) {});
}

void matvec(DType dtype, const std::byte* w, const float* x, float* y, int64_t rows, int64_t cols,
            int64_t n, cudaStream_t stream) {
  const dim3 grid(grid_for(rows, kWarpsPerBlock), static_cast<unsigned>(n));
  const dim3 block(32 * kWarpsPerBlock);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* wt = reinterpret_cast<const T*>(w);
    if constexpr (kIsPlain<T>) {
      const bool vector = (cols * sizeof(T)) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
      if (vector) {
        matvec_plain<T, true><<<grid, block, 0, stream>>>(wt, x, y, rows, cols);
      } else {
        matvec_plain<T, false><<<grid, block, 0, stream>>>(wt, x, y, rows, cols);
      }
    } else {
      matvec_blocks<T><<<grid, block, 0, stream>>>(wt, x, y, rows, cols);
    }
  });
}

void dequantize_rows(DType dtype, const std::byte* w, int64_t cols, int64_t first_row,
                     int64_t count, const int32_t* ids, float* out, cudaStream_t stream) {
  constexpr int kThreads = 256;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* wt = reinterpret_cast<const T*>(w);
    if constexpr (kIsPlain<T>) {
      dequantize_plain<T><<<grid_for(count * cols, kThreads), kThreads, 0, stream>>>(
          wt, cols, first_row, count, ids, out);
    } else {
      dequantize_blocks<T><<<grid_for(count * cols / 8, kThreads), kThreads, 0, stream>>>(
          wt, cols, first_row, count, ids, out);
    }
  });
}

}  // namespace torchless::cuda
