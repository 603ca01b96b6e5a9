// Batched matmuls above cuda::kMatvecTokens tokens (prefill) on cuBLAS: F32 weights in F32
// (pedantic SGEMM-equivalent), F16 and BF16 weights in place with the activations rounded to
// their type, quantised weights dequantised to F16 one tile of rows at a time into scratch. The
// half-precision GEMMs run on tensor cores with F32 accumulation and F32 output;
// cuda_gemm_precision.h bounds what the rounding of their operands does to the results.
#include <algorithm>

#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/backends/cuda/cuda_blas.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_gemm.h"

namespace torchless {
namespace {

// Elements of one tile of dequantised F16 weights (at most 128 MiB): every matrix of a layer of
// an 8B model is then one GEMM, and larger matrices are cut into equal tiles, so that each GEMM
// has enough output tiles for every SM while the scratch stays small beside the weights.
constexpr int64_t kTileElements = int64_t{64} << 20;
constexpr size_t kAlign = 256;  // cuBLAS's preferred operand alignment

size_t aligned(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

struct Operand {
  const void* data;
  cudaDataType type;
};

// Row-major y[n, ldy] (columns [0, rows)) = x[n, cols] W[rows, cols]^T. In cuBLAS's column-major
// terms W is the [cols, rows] matrix W' and y the [ldy, n] matrix Y': Y' = W'^T X', so
// GEMM(op T, op N) with m = rows, k = cols.
void gemm(cublasHandle_t handle, Operand w, Operand x, int64_t rows, int64_t n, int64_t cols,
          float* y, int64_t ldy, cublasComputeType_t compute) {
  const float alpha = 1.0f, beta = 0.0f;
  const int k = static_cast<int>(cols);
  cuda::check_blas(cuda::blas().gemm_ex(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows),
                                        static_cast<int>(n), k, &alpha, w.data, w.type, k, x.data,
                                        x.type, k, &beta, y, CUDA_R_32F, static_cast<int>(ldy),
                                        compute, CUBLAS_GEMM_DEFAULT),
                   "cublasGemmEx", "matmul");
}

}  // namespace

void CudaBackend::linear_gemm(const Tensor& w, const float* x, int64_t n, float* y) {
  const int64_t rows = w.rows(), cols = w.cols();
  const std::byte* wp = cuda::device_ptr(w, "matmul", "w");
  if (cols == 0) {  // empty sums; cuBLAS refuses leading dimensions of 0
    cuda::check(cudaMemsetAsync(y, 0, static_cast<size_t>(n * rows) * sizeof(float), stream_),
                "cudaMemsetAsync", "matmul");
    return;
  }
  if (w.dtype == DType::F32) {
    gemm(cublas_, {wp, CUDA_R_32F}, {x, CUDA_R_32F}, rows, n, cols, y, rows,
         CUBLAS_COMPUTE_32F_PEDANTIC);
    return;
  }
  const bool bf16 = w.dtype == DType::BF16;
  const bool in_place = bf16 || w.dtype == DType::F16;
  const cudaDataType half = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  const size_t x_bytes = aligned(static_cast<size_t>(n * cols) * 2);
  const int64_t tiles = (rows * cols + kTileElements - 1) / kTileElements;
  const int64_t tile_rows = in_place ? 0 : (rows + tiles - 1) / tiles;
  const size_t bytes = x_bytes + static_cast<size_t>(tile_rows * cols) * 2;
  auto* x_half = reinterpret_cast<std::byte*>(scratch((bytes + sizeof(float) - 1) / sizeof(float)));
  cuda::round_activations(x, x_half, bf16, n * cols, stream_);
  cuda::check_launch("matmul");
  if (in_place) {
    gemm(cublas_, {wp, half}, {x_half, half}, rows, n, cols, y, rows, CUBLAS_COMPUTE_32F);
    return;
  }
  std::byte* tile = x_half + x_bytes;
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - r0);
    cuda::dequantize_rows_f16(w.dtype, wp, cols, r0, count, tile, stream_);
    cuda::check_launch("matmul");
    gemm(cublas_, {tile, CUDA_R_16F}, {x_half, CUDA_R_16F}, count, n, cols, y + r0, rows,
         CUBLAS_COMPUTE_32F);
  }
}

}  // namespace torchless
