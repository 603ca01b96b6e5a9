#include "torchless/core/system_memory.h"

#include <unistd.h>

#include <fmt/format.h>

namespace torchless {

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0
             ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)
             : 0;
}

std::string gib(uint64_t bytes, int decimals) {
  return fmt::format("{:.{}f} GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0),
                     decimals);
}

}  // namespace torchless
