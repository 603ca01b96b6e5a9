#pragma once
// Launchers of the decode kernels: the int8-activation mat-vec of quantised weights
// (cuda_matvec_q8.cu), the vectorised mat-vec of F32/F16/BF16 weights (cuda_matvec_float.cu),
// RMSNorm and SwiGLU fused with the activation quantisation (cuda_fused.cu) and the embedding
// lookup that reads its ids on the device (cuda_embedding.cu). Plain C++ declarations, as
// cuda_kernels.h.
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "torchless/core/dtype.h"

namespace torchless::cuda {

// Activations quantised for matvec_q8: codes[n * cols] (int8) and, per block of 32 codes,
// scales[2 b] = d = max|x| / 127 and scales[2 b + 1] = d * sum of the codes. cols % 32 == 0.
struct ActivationQ8 {
  int8_t* codes = nullptr;
  float* scales = nullptr;
};
// Bytes of scratch for the quantised activations of n rows of `cols`, and their layout there
// (scratch 16-byte aligned).
size_t activation_q8_bytes(int64_t n, int64_t cols);
ActivationQ8 activation_q8_at(std::byte* scratch, int64_t n, int64_t cols);

// Whether matvec_q8 multiplies `dtype` weights stored at w (a block type whose layout it reads
// at w's alignment).
bool matvec_q8_supports(DType dtype, const std::byte* w);
// out = the quantised rows of x[n, cols].
void quantize_activations(const float* x, const ActivationQ8& out, int64_t n, int64_t cols,
                          cudaStream_t stream);
// y[t * rows + r] = sum_c W[r, c] x[t, c] with x quantised (quantize_activations), t < n.
void matvec_q8(DType dtype, const std::byte* w, const ActivationQ8& x, float* y, int64_t rows,
               int64_t cols, int64_t n, cudaStream_t stream);

// Whether matvec_float runs these operands: F32/F16/BF16 weights whose rows are 16-byte
// multiples, w and x 16-byte aligned.
bool matvec_float_supports(DType dtype, const std::byte* w, const float* x, int64_t cols);
void matvec_float(DType dtype, const std::byte* w, const float* x, float* y, int64_t rows,
                  int64_t cols, int64_t n, cudaStream_t stream);

// Fused with the quantisation of their output for the mat-vecs that follow (cols % 32 == 0):
// y = RMSNorm(x) * weight per row (as cuda::rmsnorm), and out = silu(gate) * up, each also
// written to q as quantize_activations would.
void rmsnorm_quantize(const float* x, const float* weight, float* y, const ActivationQ8& q,
                      int64_t rows, int64_t cols, float eps, cudaStream_t stream);
void silu_mul_quantize(const float* gate, const float* up, float* out, const ActivationQ8& q,
                       int64_t n, cudaStream_t stream);

// out row i = table row ids[i] as F32, or zeros when ids[i] is outside [0, table_rows): the ids
// are read on the device, so the host need not wait for them.
void embedding(DType dtype, const std::byte* table, int64_t table_rows, int64_t cols,
               const int32_t* ids, int64_t n, float* out, cudaStream_t stream);

}  // namespace torchless::cuda
