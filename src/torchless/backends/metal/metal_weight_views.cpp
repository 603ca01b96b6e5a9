#include "torchless/backends/metal/metal_weight_views.h"

#include <algorithm>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

namespace torchless::metal {

std::vector<WeightViewRange> plan_weight_views(uintptr_t address, size_t length,
                                               size_t largest_tensor, uint64_t max_buffer_length,
                                               size_t page) {
  const uintptr_t begin = address / page * page;
  const uintptr_t end = (address + length + page - 1) / page * page;
  if (end - begin <= max_buffer_length) return {{begin, end}};
  // Views start on pages, so a window is the longest whole-page length the device accepts.
  const uint64_t window = max_buffer_length / page * page;
  // A tensor may start anywhere in a page and span largest_tensor bytes: one extra page covers
  // its misalignment.
  const uint64_t overlap = (largest_tensor + page - 1) / page * page + page;
  if (window <= overlap) {
    fail(
        "a {}-byte weight tensor does not fit the device's maximum buffer length of {} bytes "
        "(with the {}-byte page it needs for alignment)",
        largest_tensor, max_buffer_length, page);
  }
  const uint64_t step = window - overlap;
  std::vector<WeightViewRange> views;
  for (uintptr_t start = begin;; start += step) {
    const uintptr_t stop = end - start <= window ? end : start + window;
    views.push_back({start, stop});
    if (stop == end) break;
  }
  return views;
}

MetalWeightViews::MetalWeightViews(MetalDevice& device, std::span<const std::byte> region,
                                   size_t largest_tensor)
    : device_(device),
      begin_(reinterpret_cast<uintptr_t>(region.data())),
      end_(begin_ + region.size()),
      largest_tensor_(largest_tensor),
      ranges_(plan_weight_views(begin_, region.size(), largest_tensor,
                                device.info().max_buffer_length, system_page_size())),
      buffers_(ranges_.size()) {}

bool MetalWeightViews::contains(const std::byte* data, size_t nbytes) const {
  const auto address = reinterpret_cast<uintptr_t>(data);
  return address >= begin_ && address <= end_ && nbytes <= end_ - address;
}

bool MetalWeightViews::overlaps(std::span<const std::byte> other) const {
  const auto begin = reinterpret_cast<uintptr_t>(other.data());
  return begin < end_ && begin + other.size() > begin_;
}

std::shared_ptr<MetalBuffer> MetalWeightViews::bind(const std::byte* data, size_t nbytes,
                                                    size_t& offset) {
  if (!contains(data, nbytes)) {
    fail("weight views: {} bytes at {} are outside the mapped region", nbytes,
         static_cast<const void*>(data));
  }
  if (nbytes > largest_tensor_) {
    fail(
        "weight views: a {}-byte tensor is larger than the {}-byte largest tensor the views "
        "were planned for",
        nbytes, largest_tensor_);
  }
  const auto address = reinterpret_cast<uintptr_t>(data);
  // The last view starting at or before the tensor holds it (see the header).
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uintptr_t a, const WeightViewRange& r) { return a < r.begin; });
  const size_t index = static_cast<size_t>(it - ranges_.begin()) - 1;
  const WeightViewRange& range = ranges_[index];
  if (address + nbytes > range.end) {
    fail("weight views: internal error, {} bytes at {} are not inside view {}", nbytes,
         static_cast<const void*>(data), index);
  }
  std::shared_ptr<MetalBuffer> buffer = buffers_[index].lock();
  if (!buffer) {
    buffer = device_.wrap_host_memory(reinterpret_cast<const void*>(range.begin),
                                      range.end - range.begin);
    buffers_[index] = buffer;
  }
  offset = address - range.begin;
  return buffer;
}

}  // namespace torchless::metal
