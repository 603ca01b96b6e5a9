#pragma once
// The threadgroup-memory limit of a dispatch: Metal refuses (or, without API validation,
// corrupts) a dispatch whose pipeline's static threadgroup memory (the `threadgroup` arrays
// declared in the shader, MTLComputePipelineState.staticThreadgroupMemoryLength) plus the
// dynamic lengths set with setThreadgroupMemoryLength:atIndex: exceed the device's
// maxThreadgroupMemoryLength. Plain C++, so it is tested on Linux.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace torchless::metal {

// Metal requires dynamic threadgroup memory lengths in multiples of 16 bytes.
constexpr size_t round_threadgroup_memory(size_t length) {
  return (length + 15) / 16 * 16;
}

// Empty when the static bytes plus every dynamic length (index -> bytes, already rounded) fit
// in `limit`; otherwise the message of the error.
inline std::string threadgroup_memory_excess(std::string_view kernel, uint64_t static_bytes,
                                             const std::map<uint32_t, size_t>& dynamic,
                                             uint64_t limit, std::string_view device) {
  uint64_t dynamic_bytes = 0;
  for (const auto& [index, length] : dynamic) dynamic_bytes += length;
  if (static_bytes + dynamic_bytes <= limit) return {};
  return fmt::format(
      "metal: kernel '{}' needs {} bytes of threadgroup memory ({} static + {} dynamic), {} "
      "allows {}",
      kernel, static_bytes + dynamic_bytes, static_bytes, dynamic_bytes, device, limit);
}

}  // namespace torchless::metal
