#pragma once
// The CUDA backend's device memory pool for the tensors it allocates (KV caches, activations,
// logits): a few large reservations (cudaMalloc), each sub-allocated by a RangeAllocator, so that
// a model's many KV-cache and activation tensors take no cudaMalloc of their own and memory
// freed by one tensor serves the next. The first reservation is sized by the memory plan when
// the backend was told one (reserve_hint), else kChunkBytes; a request that fits no reservation
// adds another of at least its size. Reservations are freed with the pool.
//
// Stream-ordered reuse: every use of pool memory is enqueued on the backend's one stream, and a
// new tensor is zeroed on that stream, so a range released while queued work still reads it is
// only written again after that work. Nothing here waits for the device.
#include <cstddef>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include <cuda_runtime.h>

#include "torchless/backends/range_allocator.h"
#include "torchless/core/tensor.h"

namespace torchless::cuda {

class DevicePool : public std::enable_shared_from_this<DevicePool> {
 public:
  static constexpr size_t kChunkBytes = size_t{256} << 20;
  static constexpr size_t kAlignment = 256;  // cudaMalloc's, for vector loads in kernels

  explicit DevicePool(cudaStream_t stream) : stream_(stream) {}
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  // The size of the first reservation (the plan's KV cache and scratch); ignored once one exists.
  void reserve_hint(size_t bytes);
  // A zeroed buffer of `size` bytes (a DeviceBuffer over a pool range). `op` names the caller in
  // errors ("alloc: cudaMalloc failed: out of memory ...").
  std::shared_ptr<Buffer> allocate(size_t size, std::string_view op);

  size_t reserved_bytes() const;
  size_t reservations() const;

 private:
  struct Chunk {
    std::byte* base;
    RangeAllocator ranges;
  };
  void release(size_t chunk, size_t offset, size_t size);
  size_t add_chunk(size_t at_least, std::string_view op);  // under mutex_

  cudaStream_t stream_;
  mutable std::mutex mutex_;
  std::vector<Chunk> chunks_;
  size_t hint_ = 0;
};

}  // namespace torchless::cuda
