#include "torchless/backends/cuda/nccl_library.h"

#include <string>

#include "torchless/core/shared_library.h"

namespace torchless::cuda {
namespace {

// Never closed (never destroyed): a communicator released during static destruction still
// calls it.
const SharedLibrary& nccl_library() {
  static const auto* const library = new SharedLibrary(
      "NCCL", {"libnccl.so." + std::to_string(NCCL_MAJOR), "libnccl.so"},
      "tensor parallelism on CUDA needs it: install NCCL or add the directory of libnccl.so to "
      "LD_LIBRARY_PATH");
  return *library;
}

Nccl load_nccl() {
  const SharedLibrary& library = nccl_library();
  Nccl n{};
  library.bind("ncclCommInitAll", n.comm_init_all);
  library.bind("ncclCommDestroy", n.comm_destroy);
  library.bind("ncclCommAbort", n.comm_abort);
  library.bind("ncclAllReduce", n.all_reduce);
  library.bind("ncclAllGather", n.all_gather);
  library.bind("ncclGetErrorString", n.error_string);
  return n;
}

}  // namespace

const Nccl& nccl() {
  static const Nccl loaded = load_nccl();
  return loaded;
}

}  // namespace torchless::cuda
