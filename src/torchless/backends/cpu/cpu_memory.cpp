#include "torchless/backends/cpu/cpu_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

namespace torchless::cpu {

HostBuffer::HostBuffer(size_t size) : size_(size) {
  // aligned_alloc needs a size that is a multiple of the alignment, and a non-zero one.
  const size_t rounded = (size + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  void* p = std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
  if (!p) fail("out of memory allocating {} bytes", size);
  std::memset(p, 0, rounded == 0 ? kHostAlignment : rounded);
  data_.reset(static_cast<std::byte*>(p));
}

void HostBuffer::Free::operator()(std::byte* p) const {
  std::free(p);
}

void release_mapped_pages(const std::byte* data, size_t size) {
  const uintptr_t page = system_page_size();
  const auto begin = reinterpret_cast<uintptr_t>(data);
  // Whole pages only: the neighbouring tensors' bytes in a shared edge page stay resident.
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + size) / page * page;
  if (last <= first) return;
  // Advice only: on failure the pages simply stay resident.
  (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace torchless::cpu
