#include "torchless/backends/cuda/nccl_library.h"

#include <dlfcn.h>

#include <string>

#include "torchless/core/error.h"

namespace torchless::cuda {
namespace {

void* open_library() {
  const std::string versioned = "libnccl.so." + std::to_string(NCCL_MAJOR);
  for (const char* name : {versioned.c_str(), "libnccl.so"}) {
    if (void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return handle;
  }
  fail(
      "tensor parallelism on CUDA needs NCCL: {} could not be opened ({}); install NCCL or add "
      "the directory of libnccl.so to LD_LIBRARY_PATH",
      versioned, dlerror());
}

template <typename F>
void load(void* library, const char* symbol, F& out) {
  out = reinterpret_cast<F>(dlsym(library, symbol));
  if (out == nullptr) fail("NCCL has no {} ({})", symbol, dlerror());
}

Nccl load_nccl() {
  void* library = open_library();  // kept open for the life of the process
  Nccl n{};
  load(library, "ncclCommInitAll", n.comm_init_all);
  load(library, "ncclCommDestroy", n.comm_destroy);
  load(library, "ncclCommAbort", n.comm_abort);
  load(library, "ncclAllReduce", n.all_reduce);
  load(library, "ncclAllGather", n.all_gather);
  load(library, "ncclGetErrorString", n.error_string);
  return n;
}

}  // namespace

const Nccl& nccl() {
  static const Nccl loaded = load_nccl();
  return loaded;
}

}  // namespace torchless::cuda
