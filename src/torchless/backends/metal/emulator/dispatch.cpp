// Dispatch: binds arguments, validates them as a GPU would, and runs the threadgroups.
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "torchless/backends/metal/emulator/kernel_registry.h"
#include "torchless/backends/metal/emulator/msl_emulator.h"
#include "torchless/backends/metal/emulator/raise.h"
#include "torchless/backends/metal/emulator/threadgroup_runner.h"

namespace torchless::mslemu {
namespace {

constexpr uint32_t kMaxThreadsPerThreadgroup = 1024;
constexpr size_t kMaxThreadgroupMemory = 32 * 1024;
constexpr size_t kMaxBytesLength = 4 * 1024;

const detail::Kernel& as_kernel(const void* k) {
  return *static_cast<const detail::Kernel*>(k);
}

std::string where(const KernelInfo& k) {
  return fmt::format("kernel {} ({}:{})", k.name, k.file, k.line);
}

template <class T>
T& grow(std::vector<T>& v, uint32_t index) {
  if (index >= v.size()) v.resize(index + 1);
  return v[index];
}

void check_geometry(const KernelInfo& k, Size3 grid, Size3 group, const Options& o) {
  if (o.simd_width != 32 && o.simd_width != 64)
    detail::raise("mslemu: {}: simd width {} (expected 32 or 64)", where(k), o.simd_width);
  if (o.os_threads < 1) detail::raise("mslemu: {}: os_threads must be at least 1", where(k));
  if (group.x == 0 || group.y == 0 || group.z == 0)
    detail::raise("mslemu: {}: empty threadgroup ({}, {}, {})", where(k), group.x, group.y,
                  group.z);
  const uint64_t threads = uint64_t{group.x} * group.y * group.z;
  const uint32_t limit = std::min(kMaxThreadsPerThreadgroup, k.max_total_threads_per_threadgroup);
  if (threads > limit)
    detail::raise("mslemu: {}: {} threads per threadgroup ({}, {}, {}) exceed the limit of {}",
                  where(k), threads, group.x, group.y, group.z, limit);
  if (uint64_t{grid.x} * grid.y * grid.z > UINT32_MAX)
    detail::raise("mslemu: {}: too many threadgroups", where(k));
}

}  // namespace

Dispatch::Dispatch(std::string_view kernel_name) : kernel_(detail::find_registered(kernel_name)) {
  if (!kernel_)
    detail::raise(
        "mslemu: unknown kernel '{}' ({} registered; was its mslemu_register_*() called?)",
        kernel_name, kernel_names().size());
}

const KernelInfo& Dispatch::kernel() const {
  return as_kernel(kernel_).info;
}

Dispatch& Dispatch::buffer(uint32_t index, void* data, size_t length) {
  if (!data) detail::raise("mslemu: {}: buffer({}) is null", where(kernel()), index);
  grow(buffers_, index) = {data, length, true};
  return *this;
}

Dispatch& Dispatch::bytes(uint32_t index, const void* data, size_t length) {
  if (length > kMaxBytesLength)
    detail::raise("mslemu: {}: bytes({}) of {} bytes exceed setBytes' {} bytes", where(kernel()),
                  index, length, kMaxBytesLength);
  std::vector<std::byte>& copy = grow(bytes_, index);
  copy.assign(static_cast<const std::byte*>(data), static_cast<const std::byte*>(data) + length);
  copy.shrink_to_fit();
  grow(buffers_, index) = {copy.data(), length, true};
  return *this;
}

Dispatch& Dispatch::threadgroup_memory(uint32_t index, size_t length) {
  grow(threadgroup_lengths_, index) = length;
  if (index >= threadgroup_set_.size()) threadgroup_set_.resize(index + 1);
  threadgroup_set_[index] = true;
  return *this;
}

void Dispatch::dispatch_threadgroups(Size3 threadgroups, Size3 threads_per_threadgroup,
                                     const Options& options) {
  const detail::Kernel& k = as_kernel(kernel_);
  check_geometry(k.info, threadgroups, threads_per_threadgroup, options);
  detail::Launch launch;
  launch.kernel = &k;
  launch.grid = threadgroups;
  launch.group = threads_per_threadgroup;
  launch.options = options;
  launch.slots.resize(k.info.params.size());
  size_t threadgroup_total = 0;
  for (size_t i = 0; i < k.info.params.size(); ++i) {
    const ParamInfo& p = k.info.params[i];
    detail::ArgSlot& slot = launch.slots[i];
    switch (p.role) {
      case ParamRole::Buffer: {
        if (p.index >= buffers_.size() || !buffers_[p.index].bound)
          detail::raise("mslemu: {}: buffer({}) '{}' is not bound", where(k.info), p.index, p.name);
        const Binding& b = buffers_[p.index];
        if (p.pointee_align > 1 && reinterpret_cast<uintptr_t>(b.data) % p.pointee_align != 0)
          detail::raise("mslemu: {}: buffer({}) '{}' ({}) must be aligned to {} bytes",
                        where(k.info), p.index, p.name, p.type, p.pointee_align);
        if (p.kind == ParamKind::Reference && b.length < p.pointee_size)
          detail::raise("mslemu: {}: buffer({}) '{}' ({}) has {} bytes, needs {}", where(k.info),
                        p.index, p.name, p.type, b.length, p.pointee_size);
        slot.ptr = b.data;
        break;
      }
      case ParamRole::Threadgroup: {
        if (p.index >= threadgroup_set_.size() || !threadgroup_set_[p.index])
          detail::raise("mslemu: {}: threadgroup({}) '{}' has no setThreadgroupMemoryLength",
                        where(k.info), p.index, p.name);
        const size_t length = threadgroup_lengths_[p.index];
        if (length == 0 || length % 16 != 0)
          detail::raise("mslemu: {}: threadgroup({}) length {} is not a positive multiple of 16",
                        where(k.info), p.index, length);
        threadgroup_total += length;
        launch.threadgroup_memory.emplace_back(i, length);
        break;
      }
      case ParamRole::Builtin:
        slot.builtin = static_cast<uint32_t>(p.builtin);
        break;
    }
  }
  if (threadgroup_total > kMaxThreadgroupMemory)
    detail::raise("mslemu: {}: {} bytes of threadgroup memory exceed {}", where(k.info),
                  threadgroup_total, kMaxThreadgroupMemory);
  const uint32_t groups = threadgroups.x * threadgroups.y * threadgroups.z;
  if (groups == 0) return;

  std::atomic<uint32_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::string error;
  const auto work = [&] {
    try {
      detail::ThreadgroupRunner runner(launch);
      for (uint32_t i; !stop && (i = next++) < groups;) {
        const uint32_t g = options.reverse_threadgroups ? groups - 1 - i : i;
        if (runner.run(g)) continue;
        std::lock_guard lock(error_mutex);
        if (!stop.exchange(true)) {
          const Size3 grid = threadgroups;
          error = fmt::format("mslemu: {}, threadgroup ({}, {}, {}): {}", where(k.info), g % grid.x,
                              g / grid.x % grid.y, g / (grid.x * grid.y), runner.error());
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(error_mutex);
      if (!stop.exchange(true)) error = e.what();
    }
  };
  const uint32_t workers = std::min<uint32_t>(static_cast<uint32_t>(options.os_threads), groups);
  std::vector<std::thread> helpers;
  for (uint32_t w = 1; w < workers; ++w) helpers.emplace_back(work);
  work();
  for (std::thread& t : helpers) t.join();
  if (stop) throw Error(error);
}

}  // namespace torchless::mslemu
