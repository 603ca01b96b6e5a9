#pragma once
// Kernels that prepare the tensor-core operands of the CUDA backend's batched matmul
// (cuda_linear_gemm.cpp): activations rounded to F16 or BF16, quantised weight rows dequantised
// to F16 one tile at a time. Launchers enqueue on `stream` and return at once.
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "torchless/core/dtype.h"

namespace torchless::cuda {

// out[i] = x[i] rounded to nearest BF16 (bf16) or F16, i < n. out is __half or __nv_bfloat16.
void round_activations(const float* x, void* out, bool bf16, int64_t n, cudaStream_t stream);

// out[r * cols + c] = W[first_row + r, c] rounded to F16 (__half), r < count: W of a quantised
// dtype (kernel_supports(dtype) and not F32/F16/BF16), cols a multiple of its block.
void dequantize_rows_f16(DType dtype, const std::byte* w, int64_t cols, int64_t first_row,
                         int64_t count, void* out, cudaStream_t stream);

}  // namespace torchless::cuda
