#include "torchless/backends/cuda/cuda_blas.h"

#include <string>

#include "torchless/core/error.h"
#include "torchless/core/shared_library.h"

namespace torchless::cuda {
namespace {

// Never closed (never destroyed): a backend released during static destruction still calls it.
const SharedLibrary& cublas_library() {
  // The toolkit's major version first (the one the headers are from), then any.
  static const auto* const library = new SharedLibrary(
      "cuBLAS", {"libcublas.so." + std::to_string(CUBLAS_VER_MAJOR), "libcublas.so"},
      "the CUDA backend needs it: add the CUDA toolkit's lib64 to LD_LIBRARY_PATH");
  return *library;
}

Blas load_blas() {
  const SharedLibrary& library = cublas_library();
  Blas b{};
  library.bind("cublasCreate_v2", b.create);
  library.bind("cublasDestroy_v2", b.destroy);
  library.bind("cublasSetStream_v2", b.set_stream);
  library.bind("cublasSetMathMode", b.set_math_mode);
  library.bind("cublasGemmEx", b.gemm_ex);
  library.bind("cublasGetStatusString", b.status_string);
  return b;
}

}  // namespace

const Blas& blas() {
  static const Blas loaded = load_blas();  // a failed load throws, and the next call retries
  return loaded;
}

void check_blas(cublasStatus_t status, std::string_view call, std::string_view op) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    fail("{}: {} failed: {}", op, call, blas().status_string(status));
  }
}

}  // namespace torchless::cuda
