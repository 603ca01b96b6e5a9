#pragma once
// Collectives between the ranks of a tensor-parallel group (docs/multi-gpu.md): each rank holds
// a slice of every weight matrix and its own backend; the partial results of its slice are
// joined with an all-reduce (sum) and the vocabulary slices of the logits with an all-gather.
// Every rank calls the same collectives in the same order with tensors of the same shape: a
// collective returns once every rank has joined it (on a GPU: once it is enqueued on the rank's
// stream, ordered with the backend's kernels).
//
// Two implementations: ThreadCommunicator (in-process, one thread per rank, over CPU memory)
// and NcclCommunicator (one process, one NCCL communicator per GPU, on each backend's stream).
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/core/tensor.h"

namespace torchless {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x (F32) becomes the element-wise sum of every rank's x, the same bytes on every rank.
  virtual void all_reduce_sum(Tensor& x) = 0;
  // whole (F32, size() times the elements of part) becomes every rank's part in rank order.
  virtual void all_gather(const Tensor& part, Tensor& whole) = 0;
  // Returns once every rank has called it.
  virtual void barrier() = 0;
  // After this rank failed (it will not join the collectives the others wait in): makes the
  // pending and every later collective of the group throw Error instead of waiting forever.
  virtual void abort() = 0;
  // Makes the rank's device current on the calling thread (CUDA: cudaSetDevice), for the thread
  // that drives this rank. Nothing to do on the CPU.
  virtual void bind_thread() {}
};

// The argument checks every communicator runs first (same messages everywhere).
void check_all_reduce(const Tensor& x);
void check_all_gather(const Tensor& part, const Tensor& whole, int size);

// One communicator per rank for a group whose rank r runs on ranks[r]: threads for the CPU
// backend, NCCL for CUDA. Throws Error for another backend, or when NCCL is missing.
std::vector<std::unique_ptr<Communicator>> make_communicators(std::span<Backend* const> ranks);

// The backend of rank `rank` >= 1 of a group whose rank 0 runs a backend of kind `kind`: another
// CPU backend with `options`, or the CUDA backend of GPU `rank`.
std::unique_ptr<Backend> make_rank_backend(std::string_view kind, const BackendOptions& options,
                                           int rank);

// How many ranks of one process this backend can run: GPUs for CUDA (0 without a device),
// unbounded for the CPU (kUnboundedRanks), 1 for a backend without a communicator.
inline constexpr int kUnboundedRanks = 1 << 20;
int tensor_parallel_capacity(std::string_view backend);

// The CUDA part (cuda/nccl_communicator.cpp, or cuda/no_nccl.cpp in builds without CUDA/NCCL).
std::vector<std::unique_ptr<Communicator>> make_nccl_communicators(std::span<Backend* const> ranks);
std::unique_ptr<Backend> make_cuda_rank_backend(int device);
int cuda_device_count();

}  // namespace torchless
