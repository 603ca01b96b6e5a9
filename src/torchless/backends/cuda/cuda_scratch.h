#pragma once
// Memory the decode path reuses from op to op, safe to grow while a step is being captured into
// a CUDA graph (cuda_graph.h), when the stream cannot be synchronised: device scratch (the int8
// activations of the mat-vecs) and pinned host staging (the ids uploaded inside a step, which a
// graph's copy node must read from page-locked memory).
#include <cstddef>
#include <vector>

#include <cuda_runtime.h>

namespace torchless::cuda {

class DeviceScratch {
 public:
  DeviceScratch() = default;
  ~DeviceScratch();
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  // At least `bytes` of device memory, 256-byte aligned. Growing outside a capture waits for
  // the stream and frees the old buffer; inside one (capturing) it cannot wait, so the old
  // buffer, which recorded nodes may still use, is kept until the scratch is destroyed.
  // Growth is geometric, so that happens a handful of times at most.
  std::byte* get(size_t bytes, cudaStream_t stream, bool capturing);

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::vector<std::byte*> retired_;
};

class HostStaging {
 public:
  HostStaging() = default;
  ~HostStaging();
  HostStaging(const HostStaging&) = delete;
  HostStaging& operator=(const HostStaging&) = delete;

  // A page-locked copy of `bytes`, valid until reset(); chunks are kept and reused.
  const std::byte* stage(const std::byte* bytes, size_t size);
  // Makes every chunk reusable: the caller has waited for the copies that read them.
  void reset();

 private:
  struct Chunk {
    std::byte* data;
    size_t size;
    size_t used;
  };
  std::vector<Chunk> chunks_;
};

}  // namespace torchless::cuda
