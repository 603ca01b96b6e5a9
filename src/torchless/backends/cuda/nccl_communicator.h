#pragma once
// The CUDA communicator: one process drives every GPU of the group, one NCCL communicator per
// GPU (ncclCommInitAll), each rank's collectives enqueued on its CudaBackend's stream, so they
// are ordered with the rank's kernels and the host does not wait for them. Each rank is driven
// by its own host thread (as the ranks of ThreadCommunicator), which NCCL allows for the
// communicators of one process.
#include <cuda_runtime.h>

#include <memory>

#include "torchless/backends/communicator.h"

typedef struct ncclComm* ncclComm_t;

namespace torchless {

namespace cuda {
class DeviceBuffer;
}

class NcclCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (rank `rank` of `size`), enqueuing on `stream`; the rank's device
  // must be current.
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, cudaStream_t stream);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(Tensor& x) override;
  void all_gather(const Tensor& part, Tensor& whole) override;
  // An all-reduce of one float, then a wait for the stream: every rank has reached it.
  void barrier() override;
  void abort() override;
  void bind_thread() override;

 private:
  ncclComm_t live_comm(const char* op) const;

  ncclComm_t comm_;
  int rank_, size_, device_;
  cudaStream_t stream_;
  std::unique_ptr<cuda::DeviceBuffer> token_;  // the barrier's float
};

}  // namespace torchless
