#pragma once
// cuBLAS, opened at run time (dlopen) the first time a CUDA backend is created, not linked:
// every program and test executable that links torchless would otherwise load and relocate
// cuBLAS and cuBLASLt (over 600 MB) at start-up whether or not it ever uses the GPU, which made
// each of the ~1,300 test processes of CI about 0.3 s slower.
#include <cublas_v2.h>

#include <string_view>

namespace torchless::cuda {

// cublasGemmEx with the compute type of cuBLAS 11 and later (the header also declares an inline
// overload taking the old cudaDataType, so decltype cannot name it).
using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                    int, const void*, const void*, cudaDataType, int, const void*,
                                    cudaDataType, int, const void*, void*, cudaDataType, int,
                                    cublasComputeType_t, cublasGemmAlgo_t);

struct Blas {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  GemmExFn gemm_ex;  // every GEMM, with its operand and compute types (cuda_linear_gemm.cpp)
  decltype(&cublasGetStatusString) status_string;
};

// The loaded library's functions; throws Error saying which library or symbol is missing.
const Blas& blas();

// Throws Error "<op>: <call> failed: <cuBLAS's message>" unless status is success.
void check_blas(cublasStatus_t status, std::string_view call, std::string_view op);

}  // namespace torchless::cuda
