#include "torchless/backends/range_allocator.h"

#include <algorithm>
#include <iterator>

#include "torchless/core/error.h"

namespace torchless {

RangeAllocator::RangeAllocator(size_t capacity, size_t alignment)
    : capacity_(capacity), alignment_(alignment), free_bytes_(0) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail("range allocator: alignment {} is not a power of two", alignment);
  }
  capacity_ -= capacity_ % alignment_;  // whole units only
  if (capacity_ > 0) free_.emplace(0, capacity_);
  free_bytes_ = capacity_;
}

size_t RangeAllocator::rounded(size_t size) const {
  return std::max<size_t>(1, (size + alignment_ - 1) / alignment_) * alignment_;
}

std::optional<size_t> RangeAllocator::allocate(size_t size) {
  if (size > capacity_) return std::nullopt;
  const size_t need = rounded(size);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const size_t offset = it->first;
    const size_t left = it->second - need;
    free_.erase(it);
    if (left > 0) free_.emplace(offset + need, left);
    free_bytes_ -= need;
    return offset;
  }
  return std::nullopt;
}

void RangeAllocator::release(size_t offset, size_t size) {
  const size_t bytes = rounded(size);
  if (offset % alignment_ != 0 || offset > capacity_ || bytes > capacity_ - offset) {
    fail("range allocator: release of {} bytes at {} outside its {} bytes", size, offset,
         capacity_);
  }
  auto next = free_.lower_bound(offset);
  const bool overlaps_next = next != free_.end() && next->first < offset + bytes;
  const bool overlaps_prev =
      next != free_.begin() && std::prev(next)->first + std::prev(next)->second > offset;
  if (overlaps_next || overlaps_prev) {
    fail("range allocator: {} bytes at {} released twice", size, offset);
  }
  size_t start = offset, length = bytes;
  if (next != free_.end() && next->first == offset + bytes) {  // merge with the range after
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {  // and with the one before
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      start = prev->first;
      length += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(start, length);
  free_bytes_ += bytes;
}

size_t RangeAllocator::largest_free() const {
  size_t largest = 0;
  for (const auto& [offset, size] : free_) largest = std::max(largest, size);
  return largest;
}

}  // namespace torchless
