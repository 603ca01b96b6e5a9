// The embedding lookup with ids read on the device: a decode step (a captured CUDA graph) cannot
// wait for the host to read them. An id outside the table gives a zero row (Backend::embedding:
// the host checks ids it can read; the Transformer checks every token before the step).
#include <cstdint>

#include "torchless/backends/cuda/cuda_decode_kernels.h"
#include "torchless/backends/cuda/cuda_quant.cuh"

namespace torchless::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per 8 elements (a chunk of a block, or 8 plain elements; cols % 8 == 0 for block
// types, any cols for plain ones, whose last chunk is cut short).
template <typename T>
__global__ void embedding_kernel(const T* __restrict__ table, int64_t table_rows, int64_t cols,
                                 const int32_t* __restrict__ ids, int64_t n,
                                 float* __restrict__ out) {
  const int64_t chunks = (cols + 7) / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * chunks) return;
  const int64_t r = i / chunks, c = i % chunks;
  const int32_t id = ids[r];
  const bool valid = id >= 0 && id < table_rows;
  float v[8] = {};
  int count = 8;
  if constexpr (kIsPlain<T>) {
    count = cols - 8 * c < 8 ? int(cols - 8 * c) : 8;
    for (int k = 0; k < count && valid; ++k) v[k] = load_elem(table, id * cols + 8 * c + k);
  } else {
    constexpr int kChunks = Quant<T>::kBlock / 8;
    if (valid) {
      const T* row = table + id * (cols / Quant<T>::kBlock);
      Quant<T>::dequant8(row[c / kChunks], int(c % kChunks), v);
    }
  }
  for (int k = 0; k < count; ++k) out[r * cols + 8 * c + k] = v[k];
}

}  // namespace

void embedding(DType dtype, const std::byte* table, int64_t table_rows, int64_t cols,
               const int32_t* ids, int64_t n, float* out, cudaStream_t stream) {
  const int64_t threads = n * ((cols + 7) / 8);
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    embedding_kernel<T><<<blocks, kThreads, 0, stream>>>(reinterpret_cast<const T*>(table),
                                                         table_rows, cols, ids, n, out);
  });
}

}  // namespace torchless::cuda
