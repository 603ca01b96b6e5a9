// Command buffers (one compute encoder each, committed once per forward pass) and the
// residency set that keeps the device's buffers wired. Part of the Apple device layer
// (apple_metal_private.h).
#include <algorithm>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "torchless/backends/metal/apple/apple_metal_private.h"
#include "torchless/backends/metal/metal_threadgroup_memory.h"

namespace torchless::metal::apple {
namespace {

// setBytes is documented for data under 4 KiB.
constexpr size_t kMaxInlineBytes = 4096;

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

}  // namespace

Residency::Residency(id<MTLDevice> device, id<MTLCommandQueue> queue, bool apple_gpu)
    : queue_(queue) {
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

Residency::~Residency() {
#if TORCHLESS_METAL_SDK_MACOS_15
  if (@available(macOS 15.0, *)) {
    if (set_ == nil) return;
    id<MTLResidencySet> set = set_;
    [set endResidency];
    [queue_ removeResidencySet:set];
  }
#endif
}

void Residency::add(id<MTLBuffer> buffer) {
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

void Residency::remove(id<MTLBuffer> buffer, bool host_view) {
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

void Residency::commit_pending() {
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

std::unique_ptr<MetalCommandBuffer> make_command_buffer(id<MTLCommandBuffer> command_buffer,
                                                        MTLDispatchType dispatch_type,
                                                        const MetalDeviceInfo& info,
                                                        std::shared_ptr<Residency> residency) {
  return std::make_unique<AppleCommandBuffer>(command_buffer, dispatch_type, info,
                                              std::move(residency));
}

}  // namespace torchless::metal::apple
