// The Apple implementation of the Metal device layer (metal_device.h) over the Metal framework,
// Objective-C++ with ARC. Everything Objective-C stays in apple/; MetalBackend sees only the
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
// This file: the device, its library and pipelines, and the entry points of metal_device.h;
// the rest of the layer is listed in apple_metal_private.h.
//
// On Linux this file is only syntax-checked (tests/metal_objc) against apple_sdk_decls.h,
// which the check force-includes; on Apple the real SDK headers are used.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "torchless/backends/metal/apple/apple_metal_private.h"
#include "torchless/backends/metal/metal_device.h"
#include "torchless/backends/metal/metal_shader_source.h"
#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"
#include "torchless/core/system_memory.h"

namespace torchless::metal {
namespace apple {
namespace {

// The simdgroup widths the shaders are written for (32 on Apple GPUs and AMD RDNA, 64 on AMD
// GCN/Vega); the emulator tests both. Intel GPUs report 8 or 16 and are refused.
constexpr uint32_t kSupportedSimdWidths[] = {32, 64};

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
        fail("metal: newBufferWithBytesNoCopy refused {} of host memory at {} on {}",
             gib(length, 1), data, info_.name);
      }
      // No copy on Apple GPUs; other GPUs (which the backend does not ask for no-copy weights)
      // read private copies, not pages of the caller's memory.
      if (info_.apple_gpu && info_.unified_memory) {
        return std::make_shared<AppleBuffer>(view, length, residency_, /*host_view=*/true);
      }
      return std::make_shared<AppleBuffer>(copy_to_private(view, length), length, residency_);
    });
  }

  std::vector<std::string> kernel_names() const override {
    return in_pool([&] {
      std::vector<std::string> names;
      NSArray<NSString*>* list = library_.functionNames;
      for (NSUInteger i = 0; i < list.count; ++i) names.push_back(to_std(list[i]));
      std::sort(names.begin(), names.end());
      return names;
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
      return make_command_buffer(command_buffer, dispatch_type_, info_, residency_);
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
      fail("metal: {} of {} exceeds the largest buffer {} allows ({})", what, gib(length, 1),
           info_.name, gib(info_.max_buffer_length, 1));
    }
  }

  [[noreturn]] void fail_allocation(size_t length) const {
    fail("metal: out of GPU memory allocating {} on {} ({} allocated, {} recommended working "
         "set); use a smaller context or model",
         gib(length, 1), info_.name, gib(device_.currentAllocatedSize, 1),
         gib(info_.recommended_max_working_set, 1));
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
}  // namespace apple

using apple::in_pool;

bool apple_metal_available(std::string* reason) {
  try {
    return in_pool([&] {
      std::string why;
      id<MTLDevice> device = apple::find_device(&why);
      if (device != nil) why = apple::unsupported_reason(device);
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
    return in_pool([] { return apple::find_device(nullptr) != nil; });
  } catch (const std::exception&) {
    return false;
  }
}

std::unique_ptr<MetalDevice> create_apple_metal_device(bool gate) {
  return in_pool([&]() -> std::unique_ptr<MetalDevice> {
    std::string reason;
    id<MTLDevice> device = apple::find_device(&reason);
    if (device == nil) fail("metal: {}", reason);
    reason = apple::unsupported_reason(device);
    if (gate && !reason.empty()) fail("metal: {}", reason);
    return std::make_unique<apple::AppleMetalDevice>(device, gate);
  });
}

}  // namespace torchless::metal
