#pragma once
// The MetalDevice over the MSL emulator: buffers are host allocations, pipelines are the
// emulator's registered kernels (limits from its KernelInfo), and a command buffer records
// dispatches and runs them in order at commit(). It also checks what only a real GPU would
// get wrong silently: a dispatch that reads or writes a range an earlier dispatch of the same
// command buffer wrote (or writes a range it read) without a memory_barrier() in between is a
// command-buffer error, so MetalBackend's barrier placement is tested in CI. It counts what it
// was asked to do, for tests and the per-token report.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "torchless/backends/metal/emulator/msl_emulator.h"
#include "torchless/backends/metal/metal_device.h"

namespace torchless::metal {

struct EmulatedMetalCounters {
  uint64_t command_buffers = 0;  // committed
  uint64_t dispatches = 0;
  uint64_t barriers = 0;
  uint64_t buffers_created = 0;      // new_buffer calls
  uint64_t buffers_wrapped = 0;      // wrap_host_memory calls
  uint64_t wrapped_bytes_bound = 0;  // bytes of wrapped (weight) memory bound to dispatches
  // Without unified memory: did_modify_range copies CPU -> GPU, and executed
  // synchronize_for_host blits GPU -> CPU.
  uint64_t ranges_modified = 0;
  uint64_t host_synchronizations = 0;
};

class EmulatedMetalDevice final : public MetalDevice {
 public:
  explicit EmulatedMetalDevice(const EmulatedMetalOptions& options);
  ~EmulatedMetalDevice() override;

  const MetalDeviceInfo& info() const override { return info_; }
  std::shared_ptr<MetalBuffer> new_buffer(size_t length) override;
  std::shared_ptr<MetalBuffer> wrap_host_memory(const void* data, size_t length) override;
  const MetalPipeline& pipeline(std::string_view kernel_name) override;
  std::vector<std::string> kernel_names() const override;
  std::unique_ptr<MetalCommandBuffer> new_command_buffer() override;

  const EmulatedMetalCounters& counters() const { return counters_; }
  const mslemu::Options& options() const { return options_; }
  EmulatedMetalCounters& mutable_counters() { return counters_; }

 private:
  MetalDeviceInfo info_;
  mslemu::Options options_;
  EmulatedMetalCounters counters_;
  std::map<std::string, std::unique_ptr<MetalPipeline>, std::less<>> pipelines_;
};

}  // namespace torchless::metal
