#pragma once
// Reuse of device buffers for activations, scratch and KV caches: requests are rounded up to
// a size bucket (steps of 1/4 of a power of two, so at most 25% slack) and a released buffer
// goes back to its bucket's free list for the next request of that bucket. A decode loop thus
// allocates nothing after its first token, and the resource count stays small (metal-notes
// §4: Metal's resource limit). A buffer released while a recorded command buffer still uses it
// may be handed out again in that command buffer: MetalBackend's barrier tracking orders the
// new writes after the old reads, because it tracks byte ranges of buffers, not tensors.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "torchless/backends/metal/metal_device.h"

namespace torchless::metal {

struct BufferPoolStats {
  uint64_t allocations = 0;  // new device buffers
  uint64_t reuses = 0;       // requests served from a free list
  uint64_t bytes_allocated = 0;
  uint64_t bytes_free = 0;  // bytes held in free lists
};

class MetalBufferPool : public std::enable_shared_from_this<MetalBufferPool> {
 public:
  explicit MetalBufferPool(MetalDevice& device) : device_(device) {}

  // A buffer of at least `length` bytes; its contents are unspecified (zeroed when new).
  std::shared_ptr<MetalBuffer> acquire(size_t length);
  void release(std::shared_ptr<MetalBuffer> buffer);
  void trim();  // frees every buffer in the free lists
  const BufferPoolStats& stats() const { return stats_; }

  static size_t bucket_size(size_t length);

 private:
  MetalDevice& device_;
  std::map<size_t, std::vector<std::shared_ptr<MetalBuffer>>> free_;
  BufferPoolStats stats_;
};

}  // namespace torchless::metal
