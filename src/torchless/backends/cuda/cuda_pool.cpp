#include "torchless/backends/cuda/cuda_pool.h"

#include <algorithm>
#include <optional>

#include "torchless/backends/cuda/cuda_memory.h"
#include "torchless/core/error.h"

namespace torchless::cuda {

DevicePool::~DevicePool() {
  // Buffers hold the pool alive (shared_from_this), so none is left, and the backend waited for
  // its stream before destroying it; cudaFree waits for any work still using the memory.
  for (Chunk& c : chunks_) cudaFree(c.base);
}

void DevicePool::reserve_hint(size_t bytes) {
  std::lock_guard lock(mutex_);
  hint_ = bytes;
}

size_t DevicePool::add_chunk(size_t at_least, std::string_view op) {
  constexpr size_t kGranule = size_t{2} << 20;
  size_t bytes = std::max(at_least, chunks_.empty() ? std::max(hint_, kChunkBytes) : kChunkBytes);
  bytes = (bytes + kGranule - 1) / kGranule * kGranule;
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // so that the next launch check does not report this failure
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail(
        "{}: cudaMalloc of a {:.1f} MiB pool reservation failed: {} ({:.1f} MiB free of {:.1f}); "
        "use a shorter context (--ctx), a Q8_0 KV cache (--kv-type q8_0), fewer parallel "
        "sequences, or a smaller quantisation",
        op, static_cast<double>(bytes) / (1 << 20), cudaGetErrorString(status),
        static_cast<double>(free_bytes) / (1 << 20), static_cast<double>(total_bytes) / (1 << 20));
  }
  chunks_.push_back({static_cast<std::byte*>(p), RangeAllocator(bytes, kAlignment)});
  return chunks_.size() - 1;
}

std::shared_ptr<Buffer> DevicePool::allocate(size_t size, std::string_view op) {
  std::unique_lock lock(mutex_);
  size_t chunk = 0;
  std::optional<size_t> offset;
  for (; chunk < chunks_.size() && !offset; ++chunk) offset = chunks_[chunk].ranges.allocate(size);
  if (offset) {
    --chunk;
  } else {
    chunk = add_chunk(size, op);
    offset = chunks_[chunk].ranges.allocate(size);
  }
  std::byte* data = chunks_[chunk].base + *offset;
  lock.unlock();
  // A released range may hold an older tensor's values; alloc() promises zeros.
  const cudaError_t zeroed = cudaMemsetAsync(data, 0, std::max<size_t>(size, 1), stream_);
  if (zeroed != cudaSuccess) {
    release(chunk, *offset, size);
    check(zeroed, "cudaMemsetAsync", op);
  }
  auto self = shared_from_this();
  return std::make_shared<DeviceBuffer>(
      data, size, [self, chunk, at = *offset, size] { self->release(chunk, at, size); });
}

void DevicePool::release(size_t chunk, size_t offset, size_t size) {
  std::lock_guard lock(mutex_);
  chunks_[chunk].ranges.release(offset, size);
}

size_t DevicePool::reserved_bytes() const {
  std::lock_guard lock(mutex_);
  size_t total = 0;
  for (const Chunk& c : chunks_) total += c.ranges.capacity();
  return total;
}

size_t DevicePool::reservations() const {
  std::lock_guard lock(mutex_);
  return chunks_.size();
}

}  // namespace torchless::cuda
