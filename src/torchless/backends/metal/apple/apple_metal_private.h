#pragma once
// Private to the Apple device layer (apple/*.mm): the SDK guards, the autorelease-pool helper,
// the error helpers and the types that more than one of its files uses. Objective-C++ only.
//   apple_device.mm          the device, its library and pipelines, the public entry points;
//   apple_command_buffer.mm  command buffers, their encoder, and the residency set;
//   apple_errors.mm          Metal's errors as text, and what the user can do about them.
#ifndef TORCHLESS_APPLE_SDK_DECLS_H
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>
#endif

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "torchless/backends/metal/metal_device.h"
#include "torchless/core/error.h"

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

namespace torchless::metal::apple {

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

bool env_flag(const char* name);
std::string to_std(NSString* text);
NSString* to_ns(std::string_view text);
// The full text of an NSError: description, failure reason (the compiler's log for a shader
// error) and domain/code.
std::string describe(NSError* error);
// Fails with Metal's error text (and what to do) unless `command_buffer` completed.
void check_completed(id<MTLCommandBuffer> command_buffer, const MetalDeviceInfo& info,
                     std::string_view what);

// The residency set (macOS 15+, Apple GPUs) that keeps every buffer of the device wired while
// the model is loaded, so the OS does not page weights out between tokens; without it decode
// can be many times slower on large models. Attached to the queue, so every command buffer
// uses it. Other GPUs get none: Metal asserts when residency sets meet a GPU that lacks them
// (llama.cpp issue 11903; MLX gates them too). TORCHLESS_METAL_NO_RESIDENCY=1 turns it off.
// Changes (added and freed buffers) are committed once per command buffer, not per buffer.
class Residency {
 public:
  Residency(id<MTLDevice> device, id<MTLCommandQueue> queue, bool apple_gpu);
  ~Residency();
  Residency(const Residency&) = delete;
  Residency& operator=(const Residency&) = delete;

  void add(id<MTLBuffer> buffer);
  // The set keeps `buffer` until the next commit_pending(), so that freeing many buffers
  // (a pool, a model) costs one commit. A view of host memory is committed at once: its pages
  // may be unmapped as soon as it is gone.
  void remove(id<MTLBuffer> buffer, bool host_view);
  // Residency is fixed when a command buffer is committed, so pending additions and removals
  // are committed (and residency requested) just before, once for the whole batch.
  void commit_pending();

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

// A command buffer with one compute encoder of `dispatch_type`.
std::unique_ptr<MetalCommandBuffer> make_command_buffer(id<MTLCommandBuffer> command_buffer,
                                                        MTLDispatchType dispatch_type,
                                                        const MetalDeviceInfo& info,
                                                        std::shared_ptr<Residency> residency);

}  // namespace torchless::metal::apple
