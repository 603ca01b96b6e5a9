#pragma once
// Argument checks of the CUDA backend's ops, as the CPU backend's (cpu_checks.h) but over
// device memory; each throws Error naming the op and operand.
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

inline void check_numel(const Tensor& t, int64_t n, std::string_view op, std::string_view what) {
  if (t.numel() != n) {
    fail("{}: {} has shape {} ({} elements), expected {} elements", op, what, t.shape.str(),
         t.numel(), n);
  }
}

inline void check_kv_cache(const Tensor& cache, std::string_view op, std::string_view what) {
  if (cache.dtype != DType::F32 && cache.dtype != DType::F16) {
    fail("{}: {} must be f32 or f16, got {}", op, what, dtype_name(cache.dtype));
  }
  device_ptr(cache, op, what);
}

}  // namespace torchless::cuda
