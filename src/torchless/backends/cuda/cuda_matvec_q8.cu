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

// A warp stages kChunkUnits units of its row at a time in shared memory, then each lane takes
// two units from there. Read straight from global memory, the blocks of most types (18, 22, 34,
// 110, 210 bytes) allow only 2-byte loads at a stride of one block per lane, which costs an L1
// wavefront per 128-byte line per load instruction. The copy is asynchronous (cp.async: no
// register round trip, every word of the chunk in flight at once) and one chunk ahead: the
// next chunk of the row streams in while the lanes compute on this one, so a warp keeps a
// chunk's bytes in flight instead of waiting for each copy before its arithmetic.
constexpr int kChunkUnits = 64;
constexpr int kStages = 2;

template <typename Block>
struct Chunk {
  static constexpr int kBlocks = kChunkUnits / DotQ8<Block>::kUnits;
  static constexpr int kBytes = kBlocks * int(sizeof(Block));
  static constexpr int kPadded = (kBytes + 15) / 16 * 16;
};

template <int kWidth>
using Word = std::conditional_t<
    kWidth == 16, uint4,
    std::conditional_t<kWidth == 8, uint2, std::conditional_t<kWidth == 4, uint32_t, uint16_t>>>;

// Asynchronous copy of one kWidth-byte word (4, 8 or 16), of which the first src_bytes come
// from global memory and the rest are zero-filled (the tail of a row).
template <int kWidth>
__device__ __forceinline__ void copy_async(uint8_t* dst, const uint8_t* src, int src_bytes) {
  const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  if constexpr (kWidth == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src),
                 "r"(src_bytes)
                 : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(s), "l"(src), "n"(kWidth),
                 "r"(src_bytes)
                 : "memory");
  }
}
__device__ __forceinline__ void copy_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most kPending of this thread's committed copy groups are still in flight.
template <int kPending>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// `bytes` from global src to shared dst, both aligned to kWidth bytes (16, 8, 4: asynchronous;
// 2: through registers, for rows the wider words do not fit). Consecutive lanes take
// consecutive words: whole sectors per instruction.
template <int kWidth>
__device__ __forceinline__ void stage_bytes(const uint8_t* src, uint8_t* dst, int bytes, int lane) {
  if constexpr (kWidth == 2) {
    const auto* s = reinterpret_cast<const uint16_t*>(src);
    auto* d = reinterpret_cast<uint16_t*>(dst);
    for (int i = lane; i < bytes / 2; i += 32) d[i] = s[i];
  } else {
    for (int i = lane * kWidth; i < bytes; i += 32 * kWidth) {
      copy_async<kWidth>(dst + i, src + i, min(kWidth, bytes - i));
    }
  }
}

// One warp per (row, token); kWidth: the copy width that the row and every chunk start are
// aligned to.
template <typename Block, int kWidth>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    matvec_q8_kernel(const Block* __restrict__ w, const int8_t* __restrict__ xq,
                     const float2* __restrict__ xds, float* __restrict__ y, int64_t rows,
                     int units) {
  using Dot = DotQ8<Block>;
  using C = Chunk<Block>;
  constexpr int kPerLane = kChunkUnits / 32;
  __shared__ __align__(16) uint8_t stage[kRowsPerBlock][kStages][C::kPadded];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + warp;
  if (row >= rows) return;  // warps never wait for each other: __syncwarp only
  const int64_t t = blockIdx.y;
  const uint8_t* wr = reinterpret_cast<const uint8_t*>(w + row * (units / Dot::kUnits));
  const int4* xt = reinterpret_cast<const int4*>(xq + t * units * 32);
  const float2* dt = xds + t * units;
  const int row_bytes = units / Dot::kUnits * int(sizeof(Block));
  const int chunks = (units + kChunkUnits - 1) / kChunkUnits;
  auto stage_chunk = [&](int c) {
    const int off = c * C::kBytes;
    stage_bytes<kWidth>(wr + off, stage[warp][c % kStages], min(C::kBytes, row_bytes - off), lane);
  };
  stage_chunk(0);
  copy_commit();
  float acc = 0.0f;
  for (int c = 0; c < chunks; ++c) {
    if (c + 1 < chunks) stage_chunk(c + 1);
    copy_commit();  // possibly empty: the group of chunk c is then always the second newest
    const int u0 = c * kChunkUnits, n = min(kChunkUnits, units - u0);
    ActUnit a[kPerLane];  // the activations load while the chunk is still in flight
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int u = u0 + min(lane + 32 * k, n - 1);
      const int4 lo = xt[2 * u], hi = xt[2 * u + 1];
      const float2 ds = dt[u];
      a[k] = ActUnit{{lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w}, ds.x, ds.y};
    }
    copy_wait<1>();
    __syncwarp();  // every lane's part of chunk c has landed
    const Block* staged = reinterpret_cast<const Block*>(stage[warp][c % kStages]);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int j = lane + 32 * k;  // unit within the chunk
      if (j < n) acc += Dot::dot(staged[j / Dot::kUnits], j % Dot::kUnits, a[k]);
    }
    __syncwarp();  // the chunk is read before chunk c + 2 overwrites it
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
    const auto launch = [&](auto kernel) {
      kernel<<<grid, 32 * kRowsPerBlock, 0, stream>>>(reinterpret_cast<const T*>(w), x.codes,
                                                      reinterpret_cast<const float2*>(x.scales), y,
                                                      rows, static_cast<int>(cols / 32));
    };
    switch (copy_width(w, row_bytes, Chunk<T>::kBytes)) {
      case 16:
        launch(matvec_q8_kernel<T, 16>);
        break;
      case 8:
        launch(matvec_q8_kernel<T, 8>);
        break;
      case 4:
        launch(matvec_q8_kernel<T, 4>);
        break;
      default:
        launch(matvec_q8_kernel<T, 2>);
    }
  });
}

}  // namespace torchless::cuda
