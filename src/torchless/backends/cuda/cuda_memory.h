#pragma once
// Device memory of the CUDA backend and the conversion of CUDA status codes into torchless
// Errors that name the call and the op.
#include <cstddef>
#include <functional>
#include <string_view>

#include <cuda_runtime.h>

#include "torchless/core/tensor.h"

namespace torchless::cuda {

// Throws Error "<op>: <call> failed: <CUDA's message>" unless status is cudaSuccess.
void check(cudaError_t status, std::string_view call, std::string_view op);
// After kernel launches: reports a failed launch under the op's name.
void check_launch(std::string_view op);

// Device memory of a tensor: its own cudaMalloc'd allocation (zero-filled, freed with the
// buffer), or a range of a DevicePool (cuda_pool.h) handed back to the pool by `release`.
class DeviceBuffer final : public Buffer {
 public:
  explicit DeviceBuffer(size_t size);
  DeviceBuffer(std::byte* data, size_t size, std::function<void()> release);
  ~DeviceBuffer() override;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  std::byte* host_data() const override { return nullptr; }
  size_t size() const override { return size_; }
  std::byte* device_data() const { return data_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_;
  std::function<void()> release_;  // empty: data_ is this buffer's own cudaMalloc
};

}  // namespace torchless::cuda
