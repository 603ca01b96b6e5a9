#include "torchless/backends/cpu/cpu_memory.h"

#include <cstdlib>
#include <cstring>

#include "torchless/core/error.h"

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

}  // namespace torchless::cpu
