#pragma once
// Argument checks shared by the CPU backend's ops; each throws Error naming the op and operand.
#include <cstdint>
#include <string_view>

#include "torchless/core/error.h"
#include "torchless/core/tensor.h"

namespace torchless::cpu {

inline std::byte* host_ptr(const Tensor& t, std::string_view op, std::string_view what) {
  if (t.empty()) fail("{}: {} is an empty tensor", op, what);
  std::byte* p = t.data();
  if (!p) fail("{}: {} is not in host memory", op, what);
  if (t.offset + t.nbytes() > t.buffer->size()) {
    fail("{}: {} of shape {} ({} bytes at offset {}) overruns its {}-byte buffer", op, what,
         t.shape.str(), t.nbytes(), t.offset, t.buffer->size());
  }
  return p;
}

inline float* f32_ptr(const Tensor& t, std::string_view op, std::string_view what) {
  if (t.dtype != DType::F32) {
    fail("{}: {} must be f32, got {}", op, what, dtype_name(t.dtype));
  }
  return reinterpret_cast<float*>(host_ptr(t, op, what));
}

inline void check_numel(const Tensor& t, int64_t n, std::string_view op, std::string_view what) {
  if (t.numel() != n) {
    fail("{}: {} has shape {} ({} elements), expected {} elements", op, what, t.shape.str(),
         t.numel(), n);
  }
}

inline void check_kv_cache(const Tensor& cache, std::string_view op, std::string_view what) {
  if (cache.dtype != DType::F32 && cache.dtype != DType::F16 && cache.dtype != DType::Q8_0) {
    fail("{}: {} must be f32, f16 or q8_0, got {}", op, what, dtype_name(cache.dtype));
  }
  host_ptr(cache, op, what);
}

}  // namespace torchless::cpu
