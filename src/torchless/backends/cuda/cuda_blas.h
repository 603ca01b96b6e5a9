#pragma once
// cuBLAS, opened at run time (dlopen) the first time a CUDA backend is created, not linked:
// every program and test executable that links torchless would otherwise load and relocate
// cuBLAS and cuBLASLt (over 600 MB) at start-up whether or not it ever uses the GPU, which made
// each of the ~1,300 test processes of CI about 0.3 s slower.
#include <cublas_v2.h>

namespace torchless::cuda {

struct Blas {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSgemm_v2) sgemm;
  decltype(&cublasGetStatusString) status_string;
};

// The loaded library's functions; throws Error saying which library or symbol is missing.
const Blas& blas();

}  // namespace torchless::cuda
