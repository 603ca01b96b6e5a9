#include "torchless/backends/metal/emulated/emulated_metal_device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <vector>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

// Defined by torchless_add_metal_kernels(NAME metal_kernels ...) in this folder's CMakeLists.
void mslemu_register_metal_kernels();

namespace torchless::metal {
namespace {

constexpr size_t kBufferAlignment = 64;

class EmulatedBuffer final : public MetalBuffer {
 public:
  // A new zero-filled buffer; `managed` gives it a separate GPU copy (no unified memory).
  EmulatedBuffer(size_t length, bool managed, EmulatedMetalCounters& counters)
      : data_(allocate(length)),
        gpu_(managed ? allocate(length) : data_),
        length_(length),
        owned_(true),
        counters_(&counters) {}
  // Wrapped host memory (unified memory only): the GPU reads the same bytes.
  EmulatedBuffer(const void* data, size_t length, EmulatedMetalCounters& counters)
      : data_(static_cast<std::byte*>(const_cast<void*>(data))),
        gpu_(data_),
        length_(length),
        owned_(false),
        counters_(&counters) {}
  ~EmulatedBuffer() override {
    if (gpu_ != data_) release(gpu_);
    if (owned_) release(data_);
  }
  EmulatedBuffer(const EmulatedBuffer&) = delete;
  EmulatedBuffer& operator=(const EmulatedBuffer&) = delete;

  std::byte* contents() const override { return data_; }
  size_t length() const override { return length_; }
  void did_modify_range(size_t offset, size_t length) override {
    if (!managed() || length == 0) return;
    if (offset > length_ || length > length_ - offset) {
      fail("did_modify_range [{}, {}) outside a {}-byte buffer", offset, offset + length, length_);
    }
    std::memcpy(gpu_ + offset, data_ + offset, length);
    ++counters_->ranges_modified;
  }
  // The blit synchronizeResource of managed storage: the GPU copy becomes the CPU's.
  void synchronize_to_host() const {
    if (!managed()) return;
    std::memcpy(data_, gpu_, length_);
    ++counters_->host_synchronizations;
  }
  // The bytes kernels see.
  std::byte* gpu_contents() const { return gpu_; }
  bool wrapped() const { return !owned_; }
  bool managed() const { return gpu_ != data_; }

 private:
  static std::byte* allocate(size_t length) {
    auto* p = static_cast<std::byte*>(
        ::operator new (std::max<size_t>(length, 1), std::align_val_t{kBufferAlignment}));
    std::memset(p, 0, length);
    return p;
  }
  static void release(std::byte* p) { ::operator delete (p, std::align_val_t{kBufferAlignment}); }

  std::byte* data_;
  std::byte* gpu_;
  size_t length_;
  bool owned_;
  EmulatedMetalCounters* counters_;
};

class EmulatedPipeline final : public MetalPipeline {
 public:
  EmulatedPipeline(const mslemu::KernelInfo& kernel, uint32_t simd_width)
      : kernel_(kernel), simd_width_(simd_width) {}
  const std::string& name() const override { return kernel_.name; }
  uint32_t max_total_threads_per_threadgroup() const override {
    return kernel_.max_total_threads_per_threadgroup;
  }
  uint32_t thread_execution_width() const override { return simd_width_; }
  uint32_t static_threadgroup_memory() const override { return 0; }
  const mslemu::KernelInfo& kernel() const { return kernel_; }

 private:
  const mslemu::KernelInfo& kernel_;
  uint32_t simd_width_;
};

struct BufferBinding {
  const EmulatedBuffer* buffer = nullptr;
  size_t offset = 0;
  size_t length = 0;
};

struct RecordedDispatch {
  const EmulatedPipeline* pipeline = nullptr;
  std::map<uint32_t, BufferBinding> buffers;
  std::map<uint32_t, std::vector<std::byte>> bytes;
  std::map<uint32_t, size_t> threadgroup_memory;
  MetalSize groups;
  MetalSize threads;
  bool barrier_before = false;
  // Not a dispatch but a recorded synchronize_for_host of this buffer (pipeline is null).
  const EmulatedBuffer* host_sync = nullptr;
};

struct ByteRange {
  const std::byte* begin;
  const std::byte* end;
  bool overlaps(const ByteRange& other) const { return begin < other.end && other.begin < end; }
};

// Ranges read and written since the last barrier, to find missing barriers. Only the buffers
// the kernel declares count: the argument table persists across dispatches (as in
// MTLComputeCommandEncoder), so it still holds buffers that earlier dispatches bound and this
// kernel never touches. Those are no hazard on a GPU and must not be reported as one; a
// declared argument left bound by an earlier dispatch is read or written, and is checked.
class HazardTracker {
 public:
  // Returns a description of the first hazard of `dispatch`, if any, then records its ranges.
  std::optional<std::string> check(const RecordedDispatch& dispatch) {
    if (dispatch.barrier_before) {
      reads_.clear();
      writes_.clear();
    }
    std::vector<ByteRange> new_reads;
    std::vector<ByteRange> new_writes;
    for (const auto& [index, binding] : dispatch.buffers) {
      const mslemu::ParamInfo* param = declared_buffer(dispatch, index);
      if (param == nullptr) continue;
      const ByteRange range{binding.buffer->gpu_contents() + binding.offset,
                            binding.buffer->gpu_contents() + binding.offset + binding.length};
      for (const ByteRange& w : writes_) {
        if (w.overlaps(range)) return hazard(dispatch, index, "reads or writes");
      }
      if (param->writable) {
        for (const ByteRange& r : reads_) {
          if (r.overlaps(range)) return hazard(dispatch, index, "writes");
        }
      }
      (param->writable ? new_writes : new_reads).push_back(range);
    }
    reads_.insert(reads_.end(), new_reads.begin(), new_reads.end());
    writes_.insert(writes_.end(), new_writes.begin(), new_writes.end());
    return std::nullopt;
  }

 private:
  // The kernel's [[buffer(index)]] parameter, or nullptr when it declares none at `index`.
  static const mslemu::ParamInfo* declared_buffer(const RecordedDispatch& dispatch,
                                                  uint32_t index) {
    for (const mslemu::ParamInfo& param : dispatch.pipeline->kernel().params) {
      if (param.role == mslemu::ParamRole::Buffer && param.index == index) return &param;
    }
    return nullptr;
  }
  static std::string hazard(const RecordedDispatch& dispatch, uint32_t index, const char* what) {
    return fmt::format(
        "missing memory barrier: {} {} buffer({}), a range an earlier dispatch of the same "
        "command buffer touched since the last barrier",
        dispatch.pipeline->name(), what, index);
  }
  std::vector<ByteRange> reads_;
  std::vector<ByteRange> writes_;
};

class EmulatedCommandBuffer final : public MetalCommandBuffer {
 public:
  explicit EmulatedCommandBuffer(EmulatedMetalDevice& device) : device_(device) {}

  void set_pipeline(const MetalPipeline& pipeline) override {
    state_.pipeline = &static_cast<const EmulatedPipeline&>(pipeline);
  }
  void set_buffer(const MetalBuffer& buffer, size_t offset, size_t length,
                  uint32_t index) override {
    if (offset + length > buffer.length()) {
      fail("set_buffer({}): range [{}, {}) outside a {}-byte buffer", index, offset,
           offset + length, buffer.length());
    }
    state_.buffers[index] = {&static_cast<const EmulatedBuffer&>(buffer), offset, length};
    state_.bytes.erase(index);
  }
  void set_bytes(const void* data, size_t length, uint32_t index) override {
    const auto* p = static_cast<const std::byte*>(data);
    state_.bytes[index].assign(p, p + length);
    state_.buffers.erase(index);
  }
  void set_threadgroup_memory(size_t length, uint32_t index) override {
    state_.threadgroup_memory[index] = length;
  }
  void dispatch_threadgroups(MetalSize groups, MetalSize threads) override {
    check_recording();
    if (!state_.pipeline) fail("dispatch without a pipeline");
    RecordedDispatch dispatch = state_;
    dispatch.groups = groups;
    dispatch.threads = threads;
    dispatch.barrier_before = barrier_pending_;
    barrier_pending_ = false;
    for (const auto& [index, binding] : dispatch.buffers) {
      if (binding.buffer->wrapped())
        device_.mutable_counters().wrapped_bytes_bound += binding.length;
    }
    dispatches_.push_back(std::move(dispatch));
    ++device_.mutable_counters().dispatches;
  }
  void memory_barrier() override {
    check_recording();
    barrier_pending_ = true;
    ++device_.mutable_counters().barriers;
  }
  void synchronize_for_host(const MetalBuffer& buffer) override {
    check_recording();
    RecordedDispatch sync;
    sync.host_sync = &static_cast<const EmulatedBuffer&>(buffer);
    dispatches_.push_back(std::move(sync));
  }
  void commit() override {
    check_recording();
    committed_ = true;
    ++device_.mutable_counters().command_buffers;
    HazardTracker hazards;
    for (const RecordedDispatch& dispatch : dispatches_) {
      if (dispatch.host_sync != nullptr) {
        dispatch.host_sync->synchronize_to_host();
        continue;
      }
      if (auto hazard = hazards.check(dispatch)) {
        error_ = *hazard;
        return;
      }
      try {
        run(dispatch);
      } catch (const std::exception& e) {
        error_ = fmt::format("{}: {}", dispatch.pipeline->name(), e.what());
        return;
      }
    }
  }
  void wait() override {
    if (!committed_) fail("wait() on a command buffer that was not committed");
    if (!error_.empty()) fail("emulated Metal command buffer failed: {}", error_);
  }

 private:
  void check_recording() const {
    if (committed_) fail("recording into a committed command buffer");
  }
  void run(const RecordedDispatch& dispatch) const {
    mslemu::Dispatch call(dispatch.pipeline->name());
    for (const auto& [index, binding] : dispatch.buffers) {
      call.buffer(index, binding.buffer->gpu_contents() + binding.offset, binding.length);
    }
    for (const auto& [index, bytes] : dispatch.bytes) call.bytes(index, bytes.data(), bytes.size());
    for (const auto& [index, length] : dispatch.threadgroup_memory) {
      call.threadgroup_memory(index, length);
    }
    call.dispatch_threadgroups({dispatch.groups.x, dispatch.groups.y, dispatch.groups.z},
                               {dispatch.threads.x, dispatch.threads.y, dispatch.threads.z},
                               device_.options());
  }

  EmulatedMetalDevice& device_;
  RecordedDispatch state_;
  std::vector<RecordedDispatch> dispatches_;
  bool barrier_pending_ = false;
  bool committed_ = false;
  std::string error_;
};

}  // namespace

EmulatedMetalDevice::EmulatedMetalDevice(const EmulatedMetalOptions& options)
    : options_(mslemu::default_options()) {
  mslemu_register_metal_kernels();
  if (options.simd_width != 0) options_.simd_width = static_cast<int>(options.simd_width);
  info_.name = fmt::format("MSL emulator (simdgroup width {})", options_.simd_width);
  info_.unified_memory = options.unified_memory;
  info_.recommended_max_working_set = uint64_t{16} << 30;
  info_.max_buffer_length =
      options.max_buffer_length != 0 ? options.max_buffer_length : uint64_t{1} << 40;
  info_.max_threadgroup_memory = 32 * 1024;
  info_.max_threads_per_threadgroup = 1024;
  info_.simd_width = static_cast<uint32_t>(options_.simd_width);
  info_.apple_gpu = options.apple_gpu;
  info_.has_simdgroup_matrix = options.simdgroup_matrix;
  info_.supports_bf16 = true;
}

EmulatedMetalDevice::~EmulatedMetalDevice() = default;

std::vector<std::string> EmulatedMetalDevice::kernel_names() const {
  std::vector<std::string> names = mslemu::kernel_names();
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<MetalBuffer> EmulatedMetalDevice::new_buffer(size_t length) {
  ++counters_.buffers_created;
  return std::make_shared<EmulatedBuffer>(length, !info_.unified_memory, counters_);
}

std::shared_ptr<MetalBuffer> EmulatedMetalDevice::wrap_host_memory(const void* data,
                                                                   size_t length) {
  if (!info_.unified_memory) {
    fail("wrap_host_memory: this device has no unified memory; weights must be copied");
  }
  const size_t page = system_page_size();
  if (reinterpret_cast<uintptr_t>(data) % page != 0 || length % page != 0) {
    fail("wrap_host_memory: region at {} of {} bytes is not aligned to the {}-byte page", data,
         length, page);
  }
  if (length > info_.max_buffer_length) {
    fail("wrap_host_memory: {} bytes exceed the maximum buffer length of {} bytes", length,
         info_.max_buffer_length);
  }
  ++counters_.buffers_wrapped;
  return std::make_shared<EmulatedBuffer>(data, length, counters_);
}

const MetalPipeline& EmulatedMetalDevice::pipeline(std::string_view kernel_name) {
  auto it = pipelines_.find(kernel_name);
  if (it != pipelines_.end()) return *it->second;
  const mslemu::KernelInfo* kernel = mslemu::find_kernel(kernel_name);
  if (!kernel) fail("Metal kernel '{}' does not exist in the shader library", kernel_name);
  auto pipeline =
      std::make_unique<EmulatedPipeline>(*kernel, static_cast<uint32_t>(options_.simd_width));
  const MetalPipeline& result = *pipeline;
  pipelines_.emplace(std::string(kernel_name), std::move(pipeline));
  return result;
}

std::unique_ptr<MetalCommandBuffer> EmulatedMetalDevice::new_command_buffer() {
  return std::make_unique<EmulatedCommandBuffer>(*this);
}

bool emulated_metal_available(std::string* reason) {
  if (reason != nullptr) {
    *reason = "Metal kernels run on the CPU by the MSL emulator (testing only, slow)";
  }
  return true;
}

std::unique_ptr<MetalDevice> create_emulated_metal_device(const EmulatedMetalOptions& options) {
  return std::make_unique<EmulatedMetalDevice>(options);
}

}  // namespace torchless::metal
