// The Apple implementation of the Metal device layer (metal_device.h) over the Metal framework,
// Objective-C++ with ARC. Everything Objective-C stays in this file; MetalBackend sees only the
// C++ interface. Design notes (see docs/metal.md and ../shared/docs/metal-notes.md):
// - one device, one queue and one library per process-level device object; the library is
//   compiled once from the embedded shader source (or loaded from TORCHLESS_METALLIB), with
//   safe math, and pipelines are created lazily and cached by kernel name;
// - one command buffer with one compute encoder per forward pass: concurrent dispatch on
//   unified-memory (Apple) GPUs, where the backend places the barriers, and serial dispatch on
//   discrete GPUs, where concurrent dispatch produced wrong results (llama.cpp PR 21177);
// - shared storage on unified memory, weights wrapped without a copy; managed storage and
//   private weight copies on GPUs without unified memory;
// - every entry point runs inside an autorelease pool (missing pools leaked gigabytes in
//   llama.cpp, PRs 5437 and 27883), and every failure becomes a torchless::Error whose text
//   carries Metal's own NSError description.
//
// On Linux this file is only syntax-checked (tests/metal_objc) against apple_sdk_decls.h,
// which the check force-includes; on Apple the real SDK headers are used.
#ifndef TORCHLESS_APPLE_SDK_DECLS_H
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "torchless/backends/metal/metal_device.h"
#include "torchless/backends/metal/metal_shader_source.h"
#include "torchless/backends/metal/metal_threadgroup_memory.h"
#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

// Three kinds of guard (tests/metal_objc checks each supported deployment target and SDK):
// - the SDK version (__MAC_OS_X_VERSION_MAX_ALLOWED): API an older SDK does not declare
//   (MTLLanguageVersion3_1 before the macOS 14 SDK; mathMode, mathFloatingPointFunctions and
//   residency sets before macOS 15) is compiled only with an SDK that has it;
// - @available: such API is called only on an OS that has it;
// - the deployment target and architecture: what can never run is not compiled, so that no
//   deprecated API is used where it is deprecated. fastMathEnabled (deprecated in macOS 15)
//   only when the deployment target is older than macOS 15; managed storage, didModifyRange:,
//   synchronizeResource: and MTLCommandBufferErrorDeviceRemoved (deprecated in the macOS 27
//   SDK, which dropped Intel Macs) only in x86_64 builds, the only ones that can meet a GPU
//   without unified memory (Apple Silicon has no discrete or external GPUs).
#if defined(__MAC_OS_X_VERSION_MAX_ALLOWED) && __MAC_OS_X_VERSION_MAX_ALLOWED >= 140000
#define TORCHLESS_METAL_SDK_MACOS_14 1
#else
#define TORCHLESS_METAL_SDK_MACOS_14 0
#endif
#if defined(__MAC_OS_X_VERSION_MAX_ALLOWED) && __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
#define TORCHLESS_METAL_SDK_MACOS_15 1
#else
#define TORCHLESS_METAL_SDK_MACOS_15 0
#endif
#if defined(__MAC_OS_X_VERSION_MIN_REQUIRED) && __MAC_OS_X_VERSION_MIN_REQUIRED < 150000
#define TORCHLESS_METAL_TARGETS_BEFORE_MACOS_15 1
#else
#define TORCHLESS_METAL_TARGETS_BEFORE_MACOS_15 0
#endif
#if defined(__x86_64__)
#define TORCHLESS_METAL_DISCRETE_GPUS 1
#else
#define TORCHLESS_METAL_DISCRETE_GPUS 0
#endif

namespace torchless::metal {
namespace {

// The simdgroup widths the shaders are written for (32 on Apple GPUs and AMD RDNA, 64 on AMD
// GCN/Vega); the emulator tests both. Intel GPUs report 8 or 16 and are refused.
constexpr uint32_t kSupportedSimdWidths[] = {32, 64};
// setBytes is documented for data under 4 KiB.
constexpr size_t kMaxInlineBytes = 4096;

// Runs f inside an autorelease pool. An exception leaving an @autoreleasepool block skips the
// pool's drain, so exceptions are caught inside the pool and rethrown after it.
template <typename F>
auto in_pool(F&& f) -> decltype(f()) {
  using Result = decltype(f());
  std::exception_ptr failure;
  if constexpr (std::is_void_v<Result>) {
    @autoreleasepool {
      try {
        f();
      } catch (...) {
        failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
  } else {
    std::optional<Result> result;
    @autoreleasepool {
      try {
        result.emplace(f());
      } catch (...) {
        failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
  }
}

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

std::string to_std(NSString* text) {
  const char* utf8 = text != nil ? text.UTF8String : nullptr;
  return utf8 != nullptr ? std::string(utf8) : std::string();
}

NSString* to_ns(std::string_view text) {
  return [[NSString alloc] initWithBytes:text.data()
                                  length:text.size()
                                encoding:NSUTF8StringEncoding];
}

std::string gib(uint64_t bytes) {
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

// The full text of an NSError: description, failure reason (the compiler's log for a shader
// error) and domain/code.
std::string describe(NSError* error) {
  if (error == nil) return "no error details from Metal";
  std::string text = to_std(error.localizedDescription);
  const std::string reason = to_std(error.localizedFailureReason);
  if (!reason.empty() && text.find(reason) == std::string::npos) text += " (" + reason + ")";
  return fmt::format("{} [{} {}]", text, to_std(error.domain), static_cast<long>(error.code));
}

// What the user can do about a failed command buffer, by Metal's error code.
std::string command_buffer_advice(NSError* error, const MetalDeviceInfo& info) {
  if (error == nil || ![error.domain isEqualToString:MTLCommandBufferErrorDomain]) return {};
  switch (static_cast<MTLCommandBufferError>(error.code)) {
    case MTLCommandBufferErrorTimeout:
      return "the GPU watchdog stopped work that ran too long; use a shorter prompt chunk or "
             "close other GPU-heavy apps";
    case MTLCommandBufferErrorOutOfMemory:
      return fmt::format(
          "the GPU ran out of memory (macOS lets it use {} on this Mac); use a smaller context "
          "or a more quantised model, or raise the limit with sudo sysctl "
          "iogpu.wired_limit_mb=<MiB>",
          gib(info.recommended_max_working_set));
    case MTLCommandBufferErrorPageFault:
    case MTLCommandBufferErrorInvalidResource:
      return "a kernel touched memory outside its buffers: a torchless bug; please report it "
             "with the output of `torchless metal-selftest`";
    case MTLCommandBufferErrorAccessRevoked:
      return "macOS revoked this process's GPU access after earlier GPU errors; restart it";
    case MTLCommandBufferErrorNotPermitted:
      return "this process may not use the GPU (no GUI session?); try --backend cpu";
#if TORCHLESS_METAL_DISCRETE_GPUS
    case MTLCommandBufferErrorDeviceRemoved:
      return "the GPU was removed";
#endif
    default:
      return {};
  }
}

bool supports_family(id<MTLDevice> device, MTLGPUFamily family) {
  return [device supportsFamily:family];
}

bool supports_metal3(id<MTLDevice> device) {
  if (@available(macOS 13.0, *)) return supports_family(device, MTLGPUFamilyMetal3);
  return false;
}

// An Apple GPU (M1 and later): the family that has simdgroup matrices and for which the fast
// path is made (no-copy weights, the concurrent encoder, residency sets). Intel's integrated
// GPUs report unified memory too, so hasUnifiedMemory cannot stand for "Apple GPU".
bool is_apple_gpu(id<MTLDevice> device) {
  return supports_family(device, MTLGPUFamilyApple7);
}

// Empty when the shaders can run on `device`; otherwise why not. SIMD-group reductions (all
// our reductions) need the Apple7 family (M1 and later) or Metal 3 (recent AMD and Intel).
std::string unsupported_reason(id<MTLDevice> device) {
  if (!TORCHLESS_METAL_DISCRETE_GPUS && !device.hasUnifiedMemory) {
    // Unreachable on Apple Silicon; this build has no managed-storage path.
    return fmt::format("the GPU '{}' has no unified memory, which an arm64 build requires",
                       to_std(device.name));
  }
  if (is_apple_gpu(device) || supports_metal3(device)) return {};
  return fmt::format(
      "the GPU '{}' lacks SIMD-group reductions: torchless needs an Apple7 (M1 or later) or "
      "Metal 3 GPU family (virtual GPUs such as CI runners' 'Apple Paravirtual device' do not "
      "qualify)",
      to_std(device.name));
}

// The system default device, else the first of all devices; nil (with *reason) when there is
// none, as in headless sessions, VMs without GPU passthrough or GPU-less sandboxes.
id<MTLDevice> find_device(std::string* reason) {
  id<MTLDevice> device = MTLCreateSystemDefaultDevice();
#if TARGET_OS_OSX
  if (device == nil) {
    NSArray<id<MTLDevice>>* devices = MTLCopyAllDevices();
    if (devices.count > 0) device = devices[0];
  }
#endif
  if (device == nil && reason != nullptr) {
    *reason = "no Metal device: MTLCreateSystemDefaultDevice and MTLCopyAllDevices found none "
              "(headless session, virtual machine without a GPU, or a sandbox without GPU access)";
  }
  return device;
}

// The residency set (macOS 15+, Apple GPUs) that keeps every buffer of the device wired while
// the model is loaded, so the OS does not page weights out between tokens; without it decode
// can be many times slower on large models. Attached to the queue, so every command buffer
// uses it. Other GPUs get none: Metal asserts when residency sets meet a GPU that lacks them
// (llama.cpp issue 11903; MLX gates them too). TORCHLESS_METAL_NO_RESIDENCY=1 turns it off.
// Changes (added and freed buffers) are committed once per command buffer, not per buffer.
class Residency {
 public:
  Residency(id<MTLDevice> device, id<MTLCommandQueue> queue, bool apple_gpu) : queue_(queue) {
#if TORCHLESS_METAL_SDK_MACOS_15
    if (!apple_gpu || env_flag("TORCHLESS_METAL_NO_RESIDENCY")) return;
    if (@available(macOS 15.0, *)) {
      MTLResidencySetDescriptor* descriptor = [MTLResidencySetDescriptor new];
      descriptor.label = @"torchless";
      NSError* error = nil;
      id<MTLResidencySet> set = [device newResidencySetWithDescriptor:descriptor error:&error];
      if (set != nil) {  // without a set everything still works, only unwired
        [queue addResidencySet:set];
        set_ = set;
      }
    }
#else
    (void)device;
    (void)apple_gpu;
#endif
  }
  ~Residency() {
#if TORCHLESS_METAL_SDK_MACOS_15
    if (@available(macOS 15.0, *)) {
      if (set_ == nil) return;
      id<MTLResidencySet> set = set_;
      [set endResidency];
      [queue_ removeResidencySet:set];
    }
#endif
  }
  Residency(const Residency&) = delete;
  Residency& operator=(const Residency&) = delete;

  void add(id<MTLBuffer> buffer) {
#if TORCHLESS_METAL_SDK_MACOS_15
    if (@available(macOS 15.0, *)) {
      if (set_ == nil) return;
      id<MTLResidencySet> set = set_;
      [set addAllocation:buffer];
      dirty_ = true;
    }
#else
    (void)buffer;
#endif
  }
  // The set keeps `buffer` until the next commit_pending(), so that freeing many buffers
  // (a pool, a model) costs one commit. A view of host memory is committed at once: its pages
  // may be unmapped as soon as it is gone.
  void remove(id<MTLBuffer> buffer, bool host_view) {
#if TORCHLESS_METAL_SDK_MACOS_15
    if (@available(macOS 15.0, *)) {
      if (set_ == nil) return;
      id<MTLResidencySet> set = set_;
      [set removeAllocation:buffer];
      if (host_view) {
        [set commit];
      } else {
        dirty_ = true;
      }
    }
#else
    (void)buffer;
    (void)host_view;
#endif
  }
  // Residency is fixed when a command buffer is committed, so pending additions and removals
  // are committed (and residency requested) just before, once for the whole batch.
  void commit_pending() {
#if TORCHLESS_METAL_SDK_MACOS_15
    if (@available(macOS 15.0, *)) {
      if (set_ == nil || !dirty_) return;
      id<MTLResidencySet> set = set_;
      [set commit];
      [set requestResidency];
      dirty_ = false;
    }
#endif
  }

 private:
  // Unused with SDKs before macOS 15, where residency sets do not exist.
  [[maybe_unused]] id<MTLCommandQueue> queue_;
  [[maybe_unused]] id set_ = nil;  // id<MTLResidencySet>, typed only behind @available checks
  [[maybe_unused]] bool dirty_ = false;
};

class AppleBuffer final : public MetalBuffer {
 public:
  // host_view: wraps memory the caller owns (newBufferWithBytesNoCopy).
  AppleBuffer(id<MTLBuffer> buffer, size_t length, std::shared_ptr<Residency> residency,
              bool host_view = false)
      : buffer_(buffer), length_(length), residency_(std::move(residency)), host_view_(host_view) {
    residency_->add(buffer_);
  }
  ~AppleBuffer() override {
    @autoreleasepool {
      residency_->remove(buffer_, host_view_);
    }
  }

  std::byte* contents() const override {
    if (buffer_.storageMode == MTLStorageModePrivate) return nullptr;
    return static_cast<std::byte*>([buffer_ contents]);
  }
  size_t length() const override { return length_; }
  void did_modify_range(size_t offset, size_t length) override {
    if (!managed() || length == 0) return;
    if (offset > length_ || length > length_ - offset) {
      fail("metal: did_modify_range [{}, {}) outside a buffer of {} bytes", offset, offset + length,
           length_);
    }
#if TORCHLESS_METAL_DISCRETE_GPUS
    in_pool([&] { [buffer_ didModifyRange:NSMakeRange(offset, length)]; });
#endif
  }

  id<MTLBuffer> handle() const {
    return buffer_;
  }
  bool managed() const {
#if TORCHLESS_METAL_DISCRETE_GPUS
    return buffer_.storageMode == MTLStorageModeManaged;
#else
    return false;
#endif
  }

 private:
  id<MTLBuffer> buffer_;
  size_t length_;  // as requested; the MTLBuffer may be larger (never zero-length)
  std::shared_ptr<Residency> residency_;
  bool host_view_;
};

class ApplePipeline final : public MetalPipeline {
 public:
  ApplePipeline(std::string name, id<MTLComputePipelineState> state)
      : name_(std::move(name)), state_(state) {}

  const std::string& name() const override { return name_; }
  uint32_t max_total_threads_per_threadgroup() const override {
    return static_cast<uint32_t>(state_.maxTotalThreadsPerThreadgroup);
  }
  uint32_t thread_execution_width() const override {
    return static_cast<uint32_t>(state_.threadExecutionWidth);
  }
  uint32_t static_threadgroup_memory() const override {
    return static_cast<uint32_t>(state_.staticThreadgroupMemoryLength);
  }
  id<MTLComputePipelineState> handle() const { return state_; }

 private:
  std::string name_;
  id<MTLComputePipelineState> state_;
};

// Fails with Metal's error text (and what to do) unless `command_buffer` completed.
void check_completed(id<MTLCommandBuffer> command_buffer, const MetalDeviceInfo& info,
                     std::string_view what) {
  if (command_buffer.status == MTLCommandBufferStatusCompleted && command_buffer.error == nil) {
    return;
  }
  NSError* error = command_buffer.error;
  const std::string advice = command_buffer_advice(error, info);
  fail("metal: {} failed on {} (status {}): {}{}{}", what, info.name,
       static_cast<unsigned long>(command_buffer.status), describe(error),
       advice.empty() ? "" : "; ", advice);
}

class AppleCommandBuffer final : public MetalCommandBuffer {
 public:
  AppleCommandBuffer(id<MTLCommandBuffer> command_buffer, MTLDispatchType dispatch_type,
                     const MetalDeviceInfo& info, std::shared_ptr<Residency> residency)
      : command_buffer_(command_buffer), info_(info), residency_(std::move(residency)) {
    encoder_ = [command_buffer_ computeCommandEncoderWithDispatchType:dispatch_type];
    if (encoder_ == nil) fail("metal: cannot create a compute command encoder on {}", info_.name);
  }
  ~AppleCommandBuffer() override {
    @autoreleasepool {
      // An encoder must be ended before it is released; a committed buffer may still read
      // buffers its owner is about to free, so wait for it (errors were the caller's to see).
      if (state_ == State::Recording) [encoder_ endEncoding];
      if (state_ == State::Committed) [command_buffer_ waitUntilCompleted];
    }
  }
  AppleCommandBuffer(const AppleCommandBuffer&) = delete;
  AppleCommandBuffer& operator=(const AppleCommandBuffer&) = delete;

  void set_pipeline(const MetalPipeline& pipeline) override {
    expect_recording("set_pipeline");
    pipeline_ = &static_cast<const ApplePipeline&>(pipeline);
    in_pool([&] { [encoder_ setComputePipelineState:pipeline_->handle()]; });
  }

  void set_buffer(const MetalBuffer& buffer, size_t offset, size_t length,
                  uint32_t index) override {
    expect_recording("set_buffer");
    const auto& apple = static_cast<const AppleBuffer&>(buffer);
    if (offset > apple.length() || length > apple.length() - offset) {
      fail("metal: binding [{}, {}) of a {}-byte buffer at index {}", offset, offset + length,
           apple.length(), index);
    }
    in_pool([&] { [encoder_ setBuffer:apple.handle() offset:offset atIndex:index]; });
  }

  void set_bytes(const void* data, size_t length, uint32_t index) override {
    expect_recording("set_bytes");
    if (length == 0 || length >= kMaxInlineBytes) {
      fail("metal: set_bytes of {} bytes at index {} (must be 1 to {} bytes)", length, index,
           kMaxInlineBytes - 1);
    }
    in_pool([&] { [encoder_ setBytes:data length:length atIndex:index]; });
  }

  void set_threadgroup_memory(size_t length, uint32_t index) override {
    expect_recording("set_threadgroup_memory");
    const size_t rounded = round_threadgroup_memory(length);
    // Checked with the pipeline's static memory at dispatch.
    threadgroup_memory_[index] = rounded;
    in_pool([&] { [encoder_ setThreadgroupMemoryLength:rounded atIndex:index]; });
  }

  void dispatch_threadgroups(MetalSize groups, MetalSize threads_per_group) override {
    expect_recording("dispatch_threadgroups");
    if (pipeline_ == nullptr) fail("metal: dispatch without a pipeline");
    const uint64_t threads =
        uint64_t{threads_per_group.x} * threads_per_group.y * threads_per_group.z;
    if (threads == 0 || threads > pipeline_->max_total_threads_per_threadgroup()) {
      fail("metal: kernel '{}' dispatched with {} threads per threadgroup; its pipeline allows "
           "1 to {}",
           pipeline_->name(), threads, pipeline_->max_total_threads_per_threadgroup());
    }
    const std::string excess =
        threadgroup_memory_excess(pipeline_->name(), pipeline_->static_threadgroup_memory(),
                                  threadgroup_memory_, info_.max_threadgroup_memory, info_.name);
    if (!excess.empty()) fail("{}", excess);
    if (uint64_t{groups.x} * groups.y * groups.z == 0) return;  // an empty grid: nothing to do
    in_pool([&] {
      [encoder_ dispatchThreadgroups:MTLSizeMake(groups.x, groups.y, groups.z)
               threadsPerThreadgroup:MTLSizeMake(threads_per_group.x, threads_per_group.y,
                                                 threads_per_group.z)];
    });
  }

  void memory_barrier() override {
    expect_recording("memory_barrier");
    // Ignored by Metal on a serial encoder, which orders dispatches itself.
    in_pool([&] { [encoder_ memoryBarrierWithScope:MTLBarrierScopeBuffers]; });
  }

  void synchronize_for_host(const MetalBuffer& buffer) override {
    expect_recording("synchronize_for_host");
    const auto& apple = static_cast<const AppleBuffer&>(buffer);
    // Recorded at commit(), after every dispatch: one blit encoder, and the compute encoder's
    // bindings survive until then.
    if (apple.managed()) to_synchronize_.push_back(apple.handle());
  }

  void commit() override {
    expect_recording("commit");
    in_pool([&] {
      [encoder_ endEncoding];
      state_ = State::Encoded;
      if (!to_synchronize_.empty()) {
        id<MTLBlitCommandEncoder> blit = [command_buffer_ blitCommandEncoder];
        if (blit == nil) fail("metal: cannot create a blit command encoder on {}", info_.name);
#if TORCHLESS_METAL_DISCRETE_GPUS
        for (id<MTLBuffer> buffer : to_synchronize_) [blit synchronizeResource:buffer];
#endif
        [blit endEncoding];
        to_synchronize_.clear();
      }
      residency_->commit_pending();
      [command_buffer_ commit];
      state_ = State::Committed;
    });
  }

  void wait() override {
    if (state_ == State::Recording) commit();
    if (state_ != State::Committed)
      fail("metal: wait() on a command buffer that was not committed");
    in_pool([&] {
      [command_buffer_ waitUntilCompleted];
      state_ = State::Done;
      check_completed(command_buffer_, info_, "a command buffer");
    });
  }

 private:
  enum class State { Recording, Encoded, Committed, Done };

  void expect_recording(const char* what) const {
    if (state_ != State::Recording) fail("metal: {} after commit()", what);
  }

  id<MTLCommandBuffer> command_buffer_;
  id<MTLComputeCommandEncoder> encoder_;
  MetalDeviceInfo info_;  // a copy: a command buffer may outlive its device object
  std::shared_ptr<Residency> residency_;
  const ApplePipeline* pipeline_ = nullptr;
  std::vector<id<MTLBuffer>> to_synchronize_;
  // Dynamic threadgroup memory by index, as set on the encoder (the state persists).
  std::map<uint32_t, size_t> threadgroup_memory_;
  State state_ = State::Recording;
};

class AppleMetalDevice final : public MetalDevice {
 public:
  // gate = false: keep a SIMD width the kernels do not support (compiling only).
  AppleMetalDevice(id<MTLDevice> device, bool gate) : device_(device), gate_(gate) {
    probe_device();
    queue_ = [device_ newCommandQueue];
    if (queue_ == nil) fail("metal: cannot create a command queue on {}", info_.name);
    queue_.label = @"torchless";
    residency_ = std::make_shared<Residency>(device_, queue_, info_.apple_gpu);
    load_library();
    probe_simd_width();
  }

  const MetalDeviceInfo& info() const override { return info_; }

  std::shared_ptr<MetalBuffer> new_buffer(size_t length) override {
    return in_pool([&]() -> std::shared_ptr<MetalBuffer> {
      check_buffer_length(length, "a buffer");
      id<MTLBuffer> buffer = [device_ newBufferWithLength:std::max<size_t>(length, 1)
                                                  options:storage_options()];
      if (buffer == nil) fail_allocation(length);
      return std::make_shared<AppleBuffer>(buffer, length, residency_);
    });
  }

  std::shared_ptr<MetalBuffer> wrap_host_memory(const void* data, size_t length) override {
    return in_pool([&]() -> std::shared_ptr<MetalBuffer> {
      const size_t page = system_page_size();
      if (data == nullptr || length == 0 || reinterpret_cast<uintptr_t>(data) % page != 0 ||
          length % page != 0) {
        fail("metal: wrapping host memory needs a page-aligned pointer and a whole number of "
             "{}-byte pages; got {} bytes at {}",
             page, length, data);
      }
      check_buffer_length(length, "a view of host memory");
      // The GPU only reads it; Metal's signature wants a mutable pointer.
      void* pointer = const_cast<void*>(data);
      id<MTLBuffer> view = [device_ newBufferWithBytesNoCopy:pointer
                                                      length:length
                                                     options:MTLResourceStorageModeShared
                                                 deallocator:nil];
      if (view == nil) {
        fail("metal: newBufferWithBytesNoCopy refused {} of host memory at {} on {}", gib(length),
             data, info_.name);
      }
      // No copy on Apple GPUs; other GPUs (which the backend does not ask for no-copy weights)
      // read private copies, not pages of the caller's memory.
      if (info_.apple_gpu && info_.unified_memory) {
        return std::make_shared<AppleBuffer>(view, length, residency_, /*host_view=*/true);
      }
      return std::make_shared<AppleBuffer>(copy_to_private(view, length), length, residency_);
    });
  }

  const MetalPipeline& pipeline(std::string_view kernel_name) override {
    if (auto found = pipelines_.find(kernel_name); found != pipelines_.end()) {
      return *found->second;
    }
    return *in_pool([&] { return create_pipeline(kernel_name); });
  }

  std::unique_ptr<MetalCommandBuffer> new_command_buffer() override {
    return in_pool([&]() -> std::unique_ptr<MetalCommandBuffer> {
      // Unretained references: no retain/release per bound buffer; the caller keeps every
      // bound buffer alive until wait() (metal_device.h).
      id<MTLCommandBuffer> command_buffer = [queue_ commandBufferWithUnretainedReferences];
      if (command_buffer == nil) fail("metal: cannot create a command buffer on {}", info_.name);
      command_buffer.label = @"torchless";
      return std::make_unique<AppleCommandBuffer>(command_buffer, dispatch_type_, info_,
                                                  residency_);
    });
  }

 private:
  void probe_device() {
    info_.name = to_std(device_.name);
    info_.unified_memory = device_.hasUnifiedMemory;
    info_.recommended_max_working_set = device_.recommendedMaxWorkingSetSize;
    info_.max_buffer_length = device_.maxBufferLength;
    info_.max_threadgroup_memory = static_cast<uint32_t>(device_.maxThreadgroupMemoryLength);
    info_.max_threads_per_threadgroup =
        static_cast<uint32_t>(device_.maxThreadsPerThreadgroup.width);
    info_.simd_width = 0;  // set by probe_simd_width() from a real pipeline
    info_.apple_gpu = is_apple_gpu(device_);
    info_.has_simdgroup_matrix = info_.apple_gpu;
    // bfloat needs Metal Shading Language 3.1 (macOS 14) and an Apple6+ or Metal 3 GPU.
    bool bf16_os = false;
    if (@available(macOS 14.0, *)) bf16_os = true;
    info_.supports_bf16 =
        bf16_os && (supports_family(device_, MTLGPUFamilyApple6) || supports_metal3(device_));
    // Concurrent dispatch corrupted results on AMD GPUs (llama.cpp PR 21177): only Apple GPUs
    // get the concurrent encoder.
    dispatch_type_ = info_.apple_gpu && !env_flag("TORCHLESS_METAL_SERIAL")
                         ? MTLDispatchTypeConcurrent
                         : MTLDispatchTypeSerial;
  }

  void load_library() {
    NSError* error = nil;
    const char* metallib = std::getenv("TORCHLESS_METALLIB");
    if (metallib != nullptr && *metallib != '\0') {
      library_ = [device_ newLibraryWithURL:[NSURL fileURLWithPath:to_ns(metallib)] error:&error];
      if (library_ == nil) {
        fail("metal: cannot load the Metal library {} (TORCHLESS_METALLIB): {}", metallib,
             describe(error));
      }
      return;
    }
    library_ = [device_ newLibraryWithSource:to_ns(metal_shader_source())
                                     options:compile_options()
                                       error:&error];
    if (library_ == nil) {  // a non-nil error with a library holds only warnings
      fail("metal: the shaders did not compile on {}: {}", info_.name, describe(error));
    }
  }

  // No preprocessor macros: no shader reads any. The offline compile of macos.yml uses the
  // same math options (-fmetal-math-mode=safe -fmetal-math-fp32-functions=precise, or
  // -fno-fast-math with an older toolchain).
  MTLCompileOptions* compile_options() const {
    MTLCompileOptions* options = [MTLCompileOptions new];
    // Fast math (Metal's default) changes results enough to fail the CPU comparisons. From
    // macOS 15 on, safe math alone still leaves the fast FP32 functions (sin and cos are
    // bounded only on [-pi, pi], far below RoPE's angles): ask for the precise ones too.
    [[maybe_unused]] bool precise_math = false;
#if TORCHLESS_METAL_SDK_MACOS_15
    if (@available(macOS 15.0, *)) {
      options.mathMode = MTLMathModeSafe;
      options.mathFloatingPointFunctions = MTLMathFloatingPointFunctionsPrecise;
      precise_math = true;
    }
#endif
#if TORCHLESS_METAL_TARGETS_BEFORE_MACOS_15
    // The only switch before macOS 15; it also selects the precise functions.
    if (!precise_math) options.fastMathEnabled = NO;
#endif
#if TORCHLESS_METAL_SDK_MACOS_14
    if (@available(macOS 14.0, *)) {
      options.languageVersion = MTLLanguageVersion3_1;
      return options;
    }
#endif
    options.languageVersion = MTLLanguageVersion3_0;
    return options;
  }

  // Shared storage on unified memory; managed elsewhere (Intel Macs' discrete GPUs), where the
  // CPU keeps its own copy and did_modify_range / synchronize_for_host move bytes explicitly.
  MTLResourceOptions storage_options() const {
#if TORCHLESS_METAL_DISCRETE_GPUS
    if (!info_.unified_memory) return MTLResourceStorageModeManaged;
#endif
    return MTLResourceStorageModeShared;
  }

  // The simdgroup width of this device, read from a real pipeline (the first kernel by name):
  // the shaders' reductions are written for kSupportedSimdWidths only.
  void probe_simd_width() {
    NSArray<NSString*>* names = library_.functionNames;
    if (names.count == 0) fail("metal: the Metal library holds no kernels");
    std::string first = to_std(names[0]);
    for (NSUInteger i = 1; i < names.count; ++i) first = std::min(first, to_std(names[i]));
    const uint32_t width = create_pipeline(first)->thread_execution_width();
    if (gate_ && std::find(std::begin(kSupportedSimdWidths), std::end(kSupportedSimdWidths),
                           width) == std::end(kSupportedSimdWidths)) {
      fail("metal: the GPU '{}' runs SIMD-groups of {} threads; torchless's kernels support 32 "
           "or 64. Use --backend cpu on this Mac",
           info_.name, width);
    }
    info_.simd_width = width;
  }

  ApplePipeline* create_pipeline(std::string_view kernel_name) {
    id<MTLFunction> function = [library_ newFunctionWithName:to_ns(kernel_name)];
    if (function == nil) fail("metal: no kernel named '{}' in the Metal library", kernel_name);
    NSError* error = nil;
    id<MTLComputePipelineState> state = [device_ newComputePipelineStateWithFunction:function
                                                                               error:&error];
    if (state == nil) {
      fail("metal: cannot build the pipeline of kernel '{}' on {}: {}", kernel_name, info_.name,
           describe(error));
    }
    auto pipeline = std::make_unique<ApplePipeline>(std::string(kernel_name), state);
    const uint32_t threads = pipeline->max_total_threads_per_threadgroup();
    const uint32_t width = pipeline->thread_execution_width();
    if (threads == 0 || width == 0) {
      fail("metal: kernel '{}' is incompatible with {} (its pipeline allows {} threads, "
           "SIMD width {})",
           kernel_name, info_.name, threads, width);
    }
    if (info_.simd_width != 0 && width != info_.simd_width) {
      fail("metal: kernel '{}' runs SIMD-groups of {} threads on {}, other kernels {}", kernel_name,
           width, info_.name, info_.simd_width);
    }
    ApplePipeline* raw = pipeline.get();
    pipelines_.emplace(std::string(kernel_name), std::move(pipeline));
    return raw;
  }

  void check_buffer_length(size_t length, const char* what) const {
    if (length > info_.max_buffer_length) {
      fail("metal: {} of {} exceeds the largest buffer {} allows ({})", what, gib(length),
           info_.name, gib(info_.max_buffer_length));
    }
  }

  [[noreturn]] void fail_allocation(size_t length) const {
    fail("metal: out of GPU memory allocating {} on {} ({} allocated, {} recommended working "
         "set); use a smaller context or model",
         gib(length), info_.name, gib(device_.currentAllocatedSize),
         gib(info_.recommended_max_working_set));
  }

  // Discrete GPUs would read shared pages over PCIe at every use, so weights are copied once
  // into private GPU memory with a blit from the no-copy view (as ggml does).
  id<MTLBuffer> copy_to_private(id<MTLBuffer> source, size_t length) {
    id<MTLBuffer> target = [device_ newBufferWithLength:length
                                                options:MTLResourceStorageModePrivate];
    if (target == nil) fail_allocation(length);
    id<MTLCommandBuffer> command_buffer = [queue_ commandBuffer];
    id<MTLBlitCommandEncoder> blit = [command_buffer blitCommandEncoder];
    if (command_buffer == nil || blit == nil) {
      fail("metal: cannot create a blit command on {}", info_.name);
    }
    [blit copyFromBuffer:source sourceOffset:0 toBuffer:target destinationOffset:0 size:length];
    [blit endEncoding];
    [command_buffer commit];
    [command_buffer waitUntilCompleted];
    check_completed(command_buffer, info_, "copying weights to GPU memory");
    return target;
  }

  id<MTLDevice> device_;
  bool gate_;
  id<MTLCommandQueue> queue_;
  id<MTLLibrary> library_;
  MetalDeviceInfo info_;
  MTLDispatchType dispatch_type_ = MTLDispatchTypeSerial;
  std::shared_ptr<Residency> residency_;
  std::map<std::string, std::unique_ptr<ApplePipeline>, std::less<>> pipelines_;
};

}  // namespace

bool apple_metal_available(std::string* reason) {
  try {
    return in_pool([&] {
      std::string why;
      id<MTLDevice> device = find_device(&why);
      if (device != nil) why = unsupported_reason(device);
      if (!why.empty() && reason != nullptr) *reason = why;
      return why.empty();
    });
  } catch (const std::exception& e) {
    if (reason != nullptr) *reason = e.what();
    return false;
  }
}

bool apple_metal_device_present() {
  try {
    return in_pool([] { return find_device(nullptr) != nil; });
  } catch (const std::exception&) {
    return false;
  }
}

std::unique_ptr<MetalDevice> create_apple_metal_device(bool gate) {
  return in_pool([&]() -> std::unique_ptr<MetalDevice> {
    std::string reason;
    id<MTLDevice> device = find_device(&reason);
    if (device == nil) fail("metal: {}", reason);
    reason = unsupported_reason(device);
    if (gate && !reason.empty()) fail("metal: {}", reason);
    return std::make_unique<AppleMetalDevice>(device, gate);
  });
}

}  // namespace torchless::metal
