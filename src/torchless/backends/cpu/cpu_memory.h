#pragma once
// Host storage of the CPU backend: owned 64-byte aligned allocations (a cache line, and the
// widest SIMD load) and non-owning wrappers of caller memory such as mapped weight files.
#include <cassert>
#include <cstddef>
#include <memory>

#include "torchless/core/tensor.h"

namespace torchless::cpu {

inline constexpr size_t kHostAlignment = 64;

class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t size);  // zero-filled
  std::byte* host_data() const override { return data_.get(); }
  size_t size() const override { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_;
};

// The caller keeps the bytes alive for the buffer's lifetime (see Backend::to_device).
class ExternalHostBuffer final : public Buffer {
 public:
  ExternalHostBuffer(const std::byte* data, size_t size)
      : data_(const_cast<std::byte*>(data)), size_(size) {}
  std::byte* host_data() const override { return data_; }
  size_t size() const override { return size_; }

 private:
  std::byte* data_;
  size_t size_;
};

// Drops the resident pages of a read-only file mapping that lie wholly inside [data, data +
// size) (madvise MADV_DONTNEED; the kernel reads them from the file again if touched). Only
// for bytes of a mapped model file, never heap or caller memory.
void release_mapped_pages(const std::byte* data, size_t size);

// The host bytes of an operand that passed op_checks.h. Every CPU tensor is in host memory, so
// a null pointer here is a bug (another backend's tensor), not a user error.
inline std::byte* host_bytes(const Tensor& t) {
  assert(t.data() != nullptr);
  return t.data();
}
inline float* host_f32(const Tensor& t) {
  assert(t.dtype == DType::F32);
  return reinterpret_cast<float*>(host_bytes(t));
}

}  // namespace torchless::cpu
