#include "torchless/backends/cuda/cuda_blas.h"

#include <dlfcn.h>

#include <string>

#include "torchless/core/error.h"

namespace torchless::cuda {
namespace {

void* open_library() {
  // The toolkit's major version first (the one the headers are from), then any.
  const std::string versioned = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  for (const char* name : {versioned.c_str(), "libcublas.so"}) {
    if (void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return handle;
  }
  fail(
      "the CUDA backend needs cuBLAS: {} could not be opened ({}); add the CUDA toolkit's lib64 "
      "to LD_LIBRARY_PATH",
      versioned, dlerror());
}

template <typename F>
void load(void* library, const char* symbol, F& out) {
  out = reinterpret_cast<F>(dlsym(library, symbol));
  if (out == nullptr) fail("cuBLAS has no {} ({})", symbol, dlerror());
}

Blas load_blas() {
  void* library = open_library();  // kept open for the life of the process
  Blas b{};
  load(library, "cublasCreate_v2", b.create);
  load(library, "cublasDestroy_v2", b.destroy);
  load(library, "cublasSetStream_v2", b.set_stream);
  load(library, "cublasSetMathMode", b.set_math_mode);
  load(library, "cublasGemmEx", b.gemm_ex);
  load(library, "cublasGetStatusString", b.status_string);
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
