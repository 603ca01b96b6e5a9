// Row-wise and element-wise ops fused with the int8 quantisation of their output, so the
// mat-vecs that read it (the q/k/v and gate/up projections after RMSNorm, the down projection
// after SwiGLU) need no separate pass over the activations. The F32 output is written too: it
// is the op's result for every other reader.
#include <cstdint>

#include "torchless/backends/cuda/cuda_act_q8.cuh"
#include "torchless/backends/cuda/cuda_decode_kernels.h"

namespace torchless::cuda {
namespace {

constexpr int kNormThreads = 256;
constexpr int kNormWarps = kNormThreads / 32;
constexpr int kElemThreads = 256;

// Thread block (slice, row): the sum of squares of the whole row (every block of the row
// computes it: the row is a few KB, read from L2), then each warp normalises, writes and
// quantises 32-element blocks of the slice [b0, b0 + per_block) in turn. Spreading one row over
// many thread blocks keeps its loads in flight together: one block per row walked the row's
// quantisation blocks one memory latency after the other (12.8 us per 4096-wide row on an
// H100, more than a Q4_0 4096 x 4096 mat-vec). When y aliases x, the launcher passes the whole
// row as one slice, so every element is read before it is written (after the barrier).
__global__ void __launch_bounds__(kNormThreads)
    rmsnorm_quantize_kernel(const float* x, const float* __restrict__ w, float* y, int8_t* codes,
                            float2* scales, int64_t cols, float eps, int per_block) {
  __shared__ float partial[kNormWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row = blockIdx.y;
  const float* xr = x + row * cols;
  float* yr = y + row * cols;
  float ss = 0.0f;
#pragma unroll 4
  for (int64_t c = threadIdx.x; c < cols; c += kNormThreads) ss = fmaf(xr[c], xr[c], ss);
  ss = warp_sum(ss);
  if (lane == 0) partial[warp] = ss;
  __syncthreads();
  float total = partial[0];
  for (int i = 1; i < kNormWarps; ++i) total += partial[i];
  const float scale = 1.0f / sqrtf(total / float(cols) + eps);
  const int64_t blocks = cols / 32;
  const int64_t b0 = int64_t(blockIdx.x) * per_block, b1 = min(blocks, b0 + per_block);
  for (int64_t b = b0 + warp; b < b1; b += kNormWarps) {
    const int64_t c = 32 * b + lane;
    const float v = xr[c] * scale * w[c];
    yr[c] = v;
    quantize_block32(v, lane, row * blocks + b, codes, scales);
  }
}

// One warp per 32 outputs; out may alias gate or up.
__global__ void silu_mul_quantize_kernel(const float* gate, const float* up, float* out,
                                         int8_t* codes, float2* scales, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;  // whole warps: n is a multiple of 32
  const float g = gate[i];
  const float v = g / (1.0f + expf(-g)) * up[i];
  out[i] = v;
  quantize_block32(v, threadIdx.x % 32, i / 32, codes, scales);
}

}  // namespace

void rmsnorm_quantize(const float* x, const float* weight, float* y, const ActivationQ8& q,
                      int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  // One warp per quantisation block; the whole row in one thread block when y aliases x.
  const int64_t blocks = cols / 32;
  const bool overlap = y < x + rows * cols && x < y + rows * cols;
  const auto per_block = static_cast<int>(overlap ? blocks : kNormWarps);
  const dim3 grid(static_cast<unsigned>((blocks + per_block - 1) / per_block),
                  static_cast<unsigned>(rows));
  rmsnorm_quantize_kernel<<<grid, kNormThreads, 0, stream>>>(
      x, weight, y, q.codes, reinterpret_cast<float2*>(q.scales), cols, eps, per_block);
}

void silu_mul_quantize(const float* gate, const float* up, float* out, const ActivationQ8& q,
                       int64_t n, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((n + kElemThreads - 1) / kElemThreads);
  silu_mul_quantize_kernel<<<blocks, kElemThreads, 0, stream>>>(
      gate, up, out, q.codes, reinterpret_cast<float2*>(q.scales), n);
}

}  // namespace torchless::cuda
