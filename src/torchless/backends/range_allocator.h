#pragma once
// Sub-allocation of byte ranges inside one reservation of device memory (the CUDA backend's pool
// for KV caches and activations): first fit over the free ranges in offset order, starts and
// sizes rounded up to an alignment, and a released range merged with its free neighbours, so a
// pool serving tensors of a few recurring sizes keeps few, large free ranges. Offsets only; the
// owner maps them to memory.
#include <cstddef>
#include <map>
#include <optional>

namespace torchless {

class RangeAllocator {
 public:
  // alignment: a power of two.
  RangeAllocator(size_t capacity, size_t alignment);

  // The offset of `size` bytes (at least one alignment unit), or nullopt when no free range fits.
  std::optional<size_t> allocate(size_t size);
  // Returns [offset, offset + size) (size as passed to allocate). Throws Error for a range that
  // is outside the capacity or overlaps a free range (a double release).
  void release(size_t offset, size_t size);

  size_t capacity() const { return capacity_; }
  size_t free_bytes() const { return free_bytes_; }
  size_t largest_free() const;
  size_t free_ranges() const { return free_.size(); }

 private:
  size_t rounded(size_t size) const;

  size_t capacity_;
  size_t alignment_;
  size_t free_bytes_;
  std::map<size_t, size_t> free_;  // offset -> size, disjoint and never adjacent
};

}  // namespace torchless
