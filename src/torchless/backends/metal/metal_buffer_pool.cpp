#include "torchless/backends/metal/metal_buffer_pool.h"

#include <bit>

namespace torchless::metal {

size_t MetalBufferPool::bucket_size(size_t length) {
  constexpr size_t kMinBucket = 256;
  if (length <= kMinBucket) return kMinBucket;
  // Quarter steps between powers of two: 1, 1.25, 1.5, 1.75 times 2^k.
  const size_t power = std::bit_floor(length);
  const size_t step = power / 4;
  return (length + step - 1) / step * step;
}

std::shared_ptr<MetalBuffer> MetalBufferPool::acquire(size_t length) {
  const size_t size = bucket_size(length);
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    std::shared_ptr<MetalBuffer> buffer = std::move(it->second.back());
    it->second.pop_back();
    ++stats_.reuses;
    stats_.bytes_free -= size;
    return buffer;
  }
  ++stats_.allocations;
  stats_.bytes_allocated += size;
  return device_.new_buffer(size);
}

void MetalBufferPool::release(std::shared_ptr<MetalBuffer> buffer) {
  const size_t size = buffer->length();
  stats_.bytes_free += size;
  free_[size].push_back(std::move(buffer));
}

void MetalBufferPool::trim() {
  for (auto& [size, buffers] : free_) {
    stats_.bytes_allocated -= size * buffers.size();
    buffers.clear();
  }
  stats_.bytes_free = 0;
}

}  // namespace torchless::metal
