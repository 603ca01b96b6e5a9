#include "torchless/backends/communicator.h"

#include "torchless/backends/thread_communicator.h"
#include "torchless/core/error.h"

namespace torchless {

void check_all_reduce(const Tensor& x) {
  if (x.empty()) fail("all_reduce_sum: x is an empty tensor");
  if (x.dtype != DType::F32) fail("all_reduce_sum: x must be f32, got {}", dtype_name(x.dtype));
}

void check_all_gather(const Tensor& part, const Tensor& whole, int size) {
  if (part.empty() || whole.empty()) fail("all_gather: empty tensor");
  if (part.dtype != DType::F32 || whole.dtype != DType::F32) {
    fail("all_gather: part and whole must be f32, got {} and {}", dtype_name(part.dtype),
         dtype_name(whole.dtype));
  }
  if (whole.numel() != part.numel() * size) {
    fail("all_gather: whole has {} elements, expected {} ranks x {}", whole.numel(), size,
         part.numel());
  }
}

std::vector<std::unique_ptr<Communicator>> make_communicators(std::span<Backend* const> ranks) {
  if (ranks.empty()) fail("a tensor-parallel group needs at least one rank");
  const std::string_view name = ranks[0]->name();
  for (const Backend* b : ranks) {
    if (b->name() != name) fail("the ranks of a tensor-parallel group must share one backend");
  }
  if (name == "cpu") return ThreadCommunicator::create_group(static_cast<int>(ranks.size()));
  if (name == "cuda") return make_nccl_communicators(ranks);
  fail("tensor parallelism runs on the cpu and cuda backends, not on {}", name);
}

std::unique_ptr<Backend> make_rank_backend(std::string_view kind, const BackendOptions& options,
                                           int rank) {
  if (kind == "cpu") return init_backend("cpu", options);
  if (kind == "cuda") return make_cuda_rank_backend(rank);
  fail("tensor parallelism runs on the cpu and cuda backends, not on {}", kind);
}

int tensor_parallel_capacity(std::string_view backend) {
  if (backend == "cpu") return kUnboundedRanks;
  if (backend == "cuda") return cuda_device_count();
  return 1;
}

}  // namespace torchless
