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

// One block per row: the sum of squares over the block, then each warp normalises, writes and
// quantises 32-element blocks of the row in turn. y may alias x (each element is read, then
// written, by one thread, after the reduction's barrier).
__global__ void __launch_bounds__(kNormThreads)
    rmsnorm_quantize_kernel(const float* x, const float* __restrict__ w, float* y, int8_t* codes,
                            float2* scales, int64_t cols, float eps) {
  __shared__ float partial[kNormWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += kNormThreads) ss = fmaf(xr[c], xr[c], ss);
  ss = warp_sum(ss);
  if (lane == 0) partial[warp] = ss;
  __syncthreads();
  float total = partial[0];
  for (int i = 1; i < kNormWarps; ++i) total += partial[i];
  const float scale = 1.0f / sqrtf(total / float(cols) + eps);
  const int64_t blocks = cols / 32;
  for (int64_t b = warp; b < blocks; b += kNormWarps) {
    const int64_t c = 32 * b + lane;
    const float v = xr[c] * scale * w[c];
    yr[c] = v;
    quantize_block32(v, lane, blockIdx.x * blocks + b, codes, scales);
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
  rmsnorm_quantize_kernel<<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
      x, weight, y, q.codes, reinterpret_cast<float2*>(q.scales), cols, eps);
}

void silu_mul_quantize(const float* gate, const float* up, float* out, const ActivationQ8& q,
                       int64_t n, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((n + kElemThreads - 1) / kElemThreads);
  silu_mul_quantize_kernel<<<blocks, kElemThreads, 0, stream>>>(
      gate, up, out, q.codes, reinterpret_cast<float2*>(q.scales), n);
}

}  // namespace torchless::cuda
