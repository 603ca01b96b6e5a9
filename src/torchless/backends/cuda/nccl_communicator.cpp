#include "torchless/backends/cuda/nccl_communicator.h"

#include <cstdlib>
#include <numeric>
#include <vector>

#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_memory.h"
#include "torchless/backends/cuda/nccl_library.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

void check_nccl(ncclResult_t result, const char* call, std::string_view op) {
  if (result != ncclSuccess) fail("{}: {} failed: {}", op, call, cuda::nccl().error_string(result));
}

}  // namespace

std::unique_ptr<Backend> make_cuda_rank_backend(int device) {
  return std::make_unique<CudaBackend>(BackendOptions{}, device);
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

std::vector<std::unique_ptr<Communicator>> make_nccl_communicators(
    std::span<Backend* const> ranks) {
  const int n = static_cast<int>(ranks.size());
  std::vector<int> devices(static_cast<size_t>(n));
  std::vector<CudaBackend*> backends;
  for (Backend* b : ranks) {
    auto* cuda = dynamic_cast<CudaBackend*>(b);
    if (cuda == nullptr) fail("an NCCL group needs CUDA backends, got {}", b->name());
    devices[backends.size()] = cuda->device_index();
    backends.push_back(cuda);
  }
  // NVLink SHARP (multicast) stays off: the shared GPU hosts this runs on must not use it.
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  std::vector<ncclComm_t> comms(static_cast<size_t>(n));
  check_nccl(cuda::nccl().comm_init_all(comms.data(), n, devices.data()), "ncclCommInitAll",
             "tensor parallel init");
  std::vector<std::unique_ptr<Communicator>> group;
  for (int r = 0; r < n; ++r) {
    CudaBackend& b = *backends[static_cast<size_t>(r)];
    b.make_current();
    group.push_back(std::make_unique<NcclCommunicator>(comms[static_cast<size_t>(r)], r, n,
                                                       b.device_index(), b.stream()));
  }
  backends[0]->make_current();
  return group;
}

NcclCommunicator::NcclCommunicator(ncclComm_t comm, int rank, int size, int device,
                                   cudaStream_t stream)
    : comm_(comm),
      rank_(rank),
      size_(size),
      device_(device),
      stream_(stream),
      token_(std::make_unique<cuda::DeviceBuffer>(sizeof(float))) {}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ != nullptr) cuda::nccl().comm_destroy(comm_);
}

ncclComm_t NcclCommunicator::live_comm(const char* op) const {
  if (comm_ == nullptr) fail("{}: the NCCL group stopped after a rank failed", op);
  return comm_;
}

void NcclCommunicator::all_reduce_sum(Tensor& x) {
  check_all_reduce(x);
  float* p = cuda::f32_ptr(x, "all_reduce_sum", "x");
  check_nccl(cuda::nccl().all_reduce(p, p, static_cast<size_t>(x.numel()), ncclFloat32, ncclSum,
                                     live_comm("all_reduce_sum"), stream_),
             "ncclAllReduce", "all_reduce_sum");
}

void NcclCommunicator::all_gather(const Tensor& part, Tensor& whole) {
  check_all_gather(part, whole, size_);
  const float* src = cuda::f32_ptr(part, "all_gather", "part");
  float* dst = cuda::f32_ptr(whole, "all_gather", "whole");
  check_nccl(cuda::nccl().all_gather(src, dst, static_cast<size_t>(part.numel()), ncclFloat32,
                                     live_comm("all_gather"), stream_),
             "ncclAllGather", "all_gather");
}

void NcclCommunicator::barrier() {
  auto* p = reinterpret_cast<float*>(token_->device_data());
  check_nccl(cuda::nccl().all_reduce(p, p, 1, ncclFloat32, ncclSum, live_comm("barrier"), stream_),
             "ncclAllReduce", "barrier");
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", "barrier");
}

void NcclCommunicator::bind_thread() {
  cuda::check(cudaSetDevice(device_), "cudaSetDevice", "tensor parallel rank");
}

void NcclCommunicator::abort() {
  if (comm_ == nullptr) return;
  cuda::nccl().comm_abort(comm_);  // frees this rank's peers from its pending collectives
  comm_ = nullptr;
}

}  // namespace torchless
