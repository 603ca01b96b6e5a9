#pragma once
// Zero-copy Metal buffers over a whole mapped weight file, as few as the device allows.
// A file no longer than the device's maxBufferLength is one buffer. A longer one is covered
// by overlapping views of maxBufferLength (rounded down to pages) whose starts are `step`
// apart, step = window - (largest tensor rounded up to pages + one page): a tensor starting
// anywhere in [start_k, start_k + step) then ends before start_k + window, so every tensor
// lies wholly inside some view and binds as (view, offset). Views are created lazily, on the
// first tensor bound in them, and live as long as a tensor uses them.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "torchless/backends/metal/metal_device.h"

namespace torchless::metal {

// One view's page-aligned address range [begin, end).
struct WeightViewRange {
  uintptr_t begin = 0;
  uintptr_t end = 0;
};

// The views covering [address, address + length): page-rounded outward, each at most
// max_buffer_length bytes. Throws Error when the largest tensor (plus the overlap it needs)
// cannot fit one view. `page` is system_page_size() (a power of two).
std::vector<WeightViewRange> plan_weight_views(uintptr_t address, size_t length,
                                               size_t largest_tensor, uint64_t max_buffer_length,
                                               size_t page);

class MetalWeightViews {
 public:
  // Plans views over the mapped region; nothing is wrapped yet. The caller keeps the region
  // mapped while any tensor bound from it is alive.
  MetalWeightViews(MetalDevice& device, std::span<const std::byte> region, size_t largest_tensor);

  // True when [data, data + nbytes) lies inside the region.
  bool contains(const std::byte* data, size_t nbytes) const;
  // True when the region shares a byte with `other`.
  bool overlaps(std::span<const std::byte> other) const;
  // The view holding [data, data + nbytes) (wrapped on first use) and the offset of data in
  // it. Throws Error when the range is outside the region or larger than the largest tensor
  // the views were planned for.
  std::shared_ptr<MetalBuffer> bind(const std::byte* data, size_t nbytes, size_t& offset);

  const std::vector<WeightViewRange>& ranges() const { return ranges_; }

 private:
  MetalDevice& device_;
  uintptr_t begin_;
  uintptr_t end_;
  size_t largest_tensor_;
  std::vector<WeightViewRange> ranges_;
  std::vector<std::weak_ptr<MetalBuffer>> buffers_;  // one per range, wrapped lazily
};

}  // namespace torchless::metal
