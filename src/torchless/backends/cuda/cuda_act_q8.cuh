#pragma once
// Device helpers of the int8 activations (cuda_decode_kernels.h's ActivationQ8): warp
// reductions and the quantisation of one block of 32 values held one per lane. The stand-alone
// quantiser and the fused RMSNorm/SwiGLU kernels share it, so their codes are bit for bit equal.
#include <cstdint>

#include "torchless/backends/cuda/cuda_warp.cuh"

namespace torchless::cuda {

// Block b of 32 activations, value v in lane `lane` (the whole warp calls this): code
// round(v / d) with d = max|v| / 127 (llama.cpp's Q8_1 rule), and (d, d * sum of codes).
__device__ __forceinline__ void quantize_block32(float v, int lane, int64_t b, int8_t* codes,
                                                 float2* scales) {
  const float amax = warp_max(fabsf(v));
  const float d = amax / 127.0f;
  const int code = amax == 0.0f ? 0 : __float2int_rn(v / d);
  const int sum = warp_sum(code);
  codes[b * 32 + lane] = static_cast<int8_t>(code);
  if (lane == 0) scales[b] = make_float2(d, d * float(sum));
}

}  // namespace torchless::cuda
