#pragma once
// Device pointers of the CUDA backend's operands: each throws Error naming the op and operand
// when a tensor is not in CUDA memory (the shared operand checks are op_checks.h's).
#include <cstdint>
#include <string_view>

#include "torchless/backends/cuda/cuda_memory.h"
#include "torchless/core/error.h"
#include "torchless/core/tensor.h"

namespace torchless::cuda {

inline std::byte* device_ptr(const Tensor& t, std::string_view op, std::string_view what) {
  if (t.empty()) fail("{}: {} is an empty tensor", op, what);
  const auto* buffer = dynamic_cast<const DeviceBuffer*>(t.buffer.get());
  if (buffer == nullptr) fail("{}: {} is not in CUDA device memory", op, what);
  if (t.offset + t.nbytes() > buffer->size()) {
    fail("{}: {} of shape {} ({} bytes at offset {}) overruns its {}-byte buffer", op, what,
         t.shape.str(), t.nbytes(), t.offset, buffer->size());
  }
  return buffer->device_data() + t.offset;
}

inline float* f32_ptr(const Tensor& t, std::string_view op, std::string_view what) {
  if (t.dtype != DType::F32) fail("{}: {} must be f32, got {}", op, what, dtype_name(t.dtype));
  return reinterpret_cast<float*>(device_ptr(t, op, what));
}

}  // namespace torchless::cuda
