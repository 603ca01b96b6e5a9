// Mat-vec of quantised weights with int8 activations: the activations are quantised once per
// mat-vec input to blocks of 32 codes with a scale (and d * sum of codes for the types with a
// min or offset), then each warp takes one weight row, stages it chunk by chunk in shared memory
// and its lanes take consecutive 32-element units with __dp4a (cuda_dot_q8.cuh), reduced by warp
// shuffles. Several rows per thread block share the activations through L1.
#include <cstdint>
#include <type_traits>

#include "torchless/backends/cuda/cuda_act_q8.cuh"
#include "torchless/backends/cuda/cuda_decode_kernels.h"
#include "torchless/backends/cuda/cuda_dot_q8.cuh"

namespace torchless::cuda {
namespace {

constexpr int kRowsPerBlock = 4;  // one warp per row
constexpr int kQuantThreads = 256;

// One warp per block of 32 activations: lane i quantises x[32 b + i].
__global__ void quantize_kernel(const float* __restrict__ x, int8_t* __restrict__ q,
                                float2* __restrict__ ds, int64_t n_blocks) {
  const int64_t b = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (b >= n_blocks) return;  // b is the same for the whole warp
  quantize_block32(x[b * 32 + lane], lane, b, q, ds);
}

// A warp stages kChunkUnits units of its row at a time in shared memory, copied with the widest
// loads the row's alignment allows (consecutive lanes, consecutive words: whole sectors per
// instruction), then each lane takes two units from there. Read straight from global memory,
// the blocks of most types (18, 22, 34, 110, 210 bytes) allow only 2-byte loads at a stride of
// one block per lane, which costs an L1 wavefront per 128-byte line per load instruction.
constexpr int kChunkUnits = 64;

template <typename Block>
struct Chunk {
  static constexpr int kBlocks = kChunkUnits / DotQ8<Block>::kUnits;
  static constexpr int kBytes = kBlocks * int(sizeof(Block));
  static constexpr int kPadded = (kBytes + 15) / 16 * 16;
};

template <int kWidth>
__device__ __forceinline__ void copy_words(const uint8_t* src, uint8_t* dst, int bytes, int lane) {
  using Word = std::conditional_t<
      kWidth == 16, uint4,
      std::conditional_t<kWidth == 8, uint2, std::conditional_t<kWidth == 4, uint32_t, uint16_t>>>;
  const Word* s = reinterpret_cast<const Word*>(src);
  Word* d = reinterpret_cast<Word*>(dst);
  for (int i = lane; i < bytes / kWidth; i += 32) d[i] = s[i];
}

// `bytes` from global src to shared dst, both aligned to `width` (16, 8, 4 or 2) bytes.
__device__ __forceinline__ void copy_chunk(const uint8_t* src, uint8_t* dst, int bytes, int width,
                                           int lane) {
  switch (width) {
    case 16:
      copy_words<16>(src, dst, bytes, lane);
      break;
    case 8:
      copy_words<8>(src, dst, bytes, lane);
      break;
    case 4:
      copy_words<4>(src, dst, bytes, lane);
      break;
    default:
      copy_words<2>(src, dst, bytes, lane);
  }
}

// One warp per (row, token). width: the copy width of whole chunks (a partial last chunk of a
// row is copied 2 bytes at a time: every block size is even).
template <typename Block>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    matvec_q8_kernel(const Block* __restrict__ w, const int8_t* __restrict__ xq,
                     const float2* __restrict__ xds, float* __restrict__ y, int64_t rows, int units,
                     int width) {
  using Dot = DotQ8<Block>;
  __shared__ __align__(16) uint8_t stage[kRowsPerBlock][Chunk<Block>::kPadded];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + warp;
  if (row >= rows) return;  // warps never wait for each other: __syncwarp only
  const int64_t t = blockIdx.y;
  const uint8_t* wr = reinterpret_cast<const uint8_t*>(w + row * (units / Dot::kUnits));
  const Block* staged = reinterpret_cast<const Block*>(stage[warp]);
  const int4* xt = reinterpret_cast<const int4*>(xq + t * units * 32);
  const float2* dt = xds + t * units;
  float acc = 0.0f;
  for (int u0 = 0; u0 < units; u0 += kChunkUnits) {
    const int n = min(kChunkUnits, units - u0);
    copy_chunk(wr + int64_t(u0 / Dot::kUnits) * int64_t(sizeof(Block)), stage[warp],
               n / Dot::kUnits * int(sizeof(Block)), n == kChunkUnits ? width : 2, lane);
    __syncwarp();
#pragma unroll
    for (int k = 0; k < kChunkUnits / 32; ++k) {
      const int j = lane + 32 * k;  // unit within the chunk
      if (j < n) {
        const int u = u0 + j;
        const int4 lo = xt[2 * u], hi = xt[2 * u + 1];
        const float2 ds = dt[u];
        const ActUnit a{{lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w}, ds.x, ds.y};
        acc += Dot::dot(staged[j / Dot::kUnits], j % Dot::kUnits, a);
      }
    }
    __syncwarp();  // the chunk is read before the next one overwrites it
  }
  acc = warp_sum(acc);
  if (lane == 0) y[t * rows + row] = acc;
}

// The widest copy (16, 8, 4 or 2 bytes) that the base, every row and every whole chunk are
// aligned to.
int copy_width(const std::byte* w, int64_t row_bytes, int chunk_bytes) {
  for (int width : {16, 8, 4}) {
    if (reinterpret_cast<uintptr_t>(w) % width == 0 && row_bytes % width == 0 &&
        chunk_bytes % width == 0) {
      return width;
    }
  }
  return 2;
}

// Calls f(Block{}) for the block types with an integer dot product; false for the others.
template <typename F>
bool dispatch_q8(DType dtype, F&& f) {
  bool found = false;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!kIsPlain<T>) {
      f(tag);
      found = true;
    }
  });
  return found;
}

unsigned grid_for(int64_t n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace

bool matvec_q8_supports(DType dtype, const std::byte* w) {
  bool ok = false;
  dispatch_q8(dtype, [&](auto tag) {
    ok = reinterpret_cast<uintptr_t>(w) % DotQ8<decltype(tag)>::kAlign == 0;
  });
  return ok;
}

size_t activation_q8_bytes(int64_t n, int64_t cols) {
  const size_t codes = static_cast<size_t>(n * cols);
  return (codes + 15) / 16 * 16 + static_cast<size_t>(n * cols / 32) * sizeof(float2);
}

ActivationQ8 activation_q8_at(std::byte* scratch, int64_t n, int64_t cols) {
  const size_t codes = static_cast<size_t>(n * cols);
  return {reinterpret_cast<int8_t*>(scratch),
          reinterpret_cast<float*>(scratch + (codes + 15) / 16 * 16)};
}

void quantize_activations(const float* x, const ActivationQ8& out, int64_t n, int64_t cols,
                          cudaStream_t stream) {
  const int64_t blocks = n * cols / 32;
  quantize_kernel<<<grid_for(blocks * 32, kQuantThreads), kQuantThreads, 0, stream>>>(
      x, out.codes, reinterpret_cast<float2*>(out.scales), blocks);
}

void matvec_q8(DType dtype, const std::byte* w, const ActivationQ8& x, float* y, int64_t rows,
               int64_t cols, int64_t n, cudaStream_t stream) {
  const dim3 grid(grid_for(rows, kRowsPerBlock), static_cast<unsigned>(n));
  dispatch_q8(dtype, [&](auto tag) {
    using T = decltype(tag);
    const int64_t row_bytes = cols / (32 * DotQ8<T>::kUnits) * int64_t(sizeof(T));
    const int width = copy_width(w, row_bytes, Chunk<T>::kBytes);
    matvec_q8_kernel<T><<<grid, 32 * kRowsPerBlock, 0, stream>>>(
        reinterpret_cast<const T*>(w), x.codes, reinterpret_cast<const float2*>(x.scales), y, rows,
        static_cast<int>(cols / 32), width);
  });
}

}  // namespace torchless::cuda
