// The CUDA part of the communicators in builds without CUDA or without nccl.h: compiled instead
// of nccl_communicator.cpp (the build chooses by file, as for no_cuda.cpp).
#include "torchless/backends/backend_registry.h"
#include "torchless/backends/communicator.h"
#include "torchless/core/error.h"

namespace torchless {

std::vector<std::unique_ptr<Communicator>> make_nccl_communicators(std::span<Backend* const>) {
  fail("{}", not_built_message(BuildOption::Nccl));
}

std::unique_ptr<Backend> make_cuda_rank_backend(int) {
  fail("{}", not_built_message(BuildOption::Nccl));
}

int cuda_device_count() {
  return 0;
}

}  // namespace torchless
