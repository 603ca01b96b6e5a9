#include "torchless/backends/cuda/cuda_memory.h"

#include <utility>

#include "torchless/core/error.h"

namespace torchless::cuda {

void check(cudaError_t status, std::string_view call, std::string_view op) {
  if (status != cudaSuccess) {
    fail("{}: {} failed: {} ({})", op, call, cudaGetErrorString(status), cudaGetErrorName(status));
  }
}

void check_launch(std::string_view op) {
  check(cudaGetLastError(), "kernel launch", op);
}

DeviceBuffer::DeviceBuffer(size_t size) : size_(size) {
  // cudaMalloc(0) returns no pointer; keep one valid address for empty tensors.
  void* p = nullptr;
  check(cudaMalloc(&p, size == 0 ? 1 : size), "cudaMalloc", fmt::format("alloc of {} bytes", size));
  data_ = static_cast<std::byte*>(p);
  check(cudaMemset(data_, 0, size == 0 ? 1 : size), "cudaMemset", "alloc");
}

DeviceBuffer::DeviceBuffer(std::byte* data, size_t size, std::function<void()> release)
    : data_(data), size_(size), release_(std::move(release)) {}

DeviceBuffer::~DeviceBuffer() {
  if (release_) {
    release_();
    return;
  }
  cudaFree(data_);  // errors here have no one to report to; the context may be gone at exit
}

}  // namespace torchless::cuda
