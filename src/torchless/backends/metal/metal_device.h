#pragma once
// The small device layer under MetalBackend: device, buffers, pipelines and command
// recording. Two implementations: the Apple one over the Metal framework (apple/, compiled
// only on Apple platforms) and the emulated one that runs the same .metal kernels on the CPU
// (emulated/emulated_metal_device.cpp). MetalBackend's logic (buffer pool, pipeline cache, argument
// packing, dispatch geometry, barriers) only ever talks to this interface, so Linux CI
// exercises all of it.
//
// Threading: a MetalDevice and everything it returns are used from one thread at a time.
// Lifetimes: buffers and pipelines are shared_ptr/references owned by the device; a command
// buffer keeps no buffer alive, so the caller keeps every bound buffer alive until wait().
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace torchless::metal {

struct MetalDeviceInfo {
  std::string name;            // "Apple M2 Pro", "MSL emulator (simd 32)"
  bool unified_memory = true;  // hasUnifiedMemory; false: managed storage
  // An Apple GPU (Apple7 family, M1 and later): no-copy weights, concurrent encoder, residency
  // sets. Intel's integrated GPUs have unified memory too, but none of these.
  bool apple_gpu = true;
  uint64_t recommended_max_working_set = 0;  // recommendedMaxWorkingSetSize, bytes
  uint64_t max_buffer_length = 0;            // maxBufferLength, bytes
  uint32_t max_threadgroup_memory = 0;       // maxThreadgroupMemoryLength, bytes
  uint32_t max_threads_per_threadgroup = 0;  // maxThreadsPerThreadgroup (total)
  uint32_t simd_width = 32;                  // threadExecutionWidth of a simple pipeline
  bool has_simdgroup_matrix = false;         // Apple7+ (simdgroup_float8x8)
  bool supports_bf16 = false;                // Metal 3.1 bfloat (Apple6+/Metal3)
};

// A grid or threadgroup size, as MTLSize.
struct MetalSize {
  uint32_t x = 1;
  uint32_t y = 1;
  uint32_t z = 1;
};

class MetalBuffer {
 public:
  virtual ~MetalBuffer() = default;
  // CPU-visible bytes (shared or managed storage); nullptr for private storage.
  virtual std::byte* contents() const = 0;
  virtual size_t length() const = 0;
  // After the CPU wrote [offset, offset + length) of a managed-storage buffer (GPUs without
  // unified memory): tells Metal to copy those bytes to the GPU. A no-op for shared storage.
  virtual void did_modify_range(size_t offset, size_t length) = 0;
};

class MetalPipeline {
 public:
  virtual ~MetalPipeline() = default;
  virtual const std::string& name() const = 0;  // the kernel function's name
  virtual uint32_t max_total_threads_per_threadgroup() const = 0;
  virtual uint32_t thread_execution_width() const = 0;     // the simdgroup width
  virtual uint32_t static_threadgroup_memory() const = 0;  // bytes declared in the shader
};

// One command buffer with one concurrent compute encoder. Dispatches may run concurrently
// unless separated by memory_barrier(); the recorder (MetalBackend) places the barriers.
// Argument state (pipeline, buffers, bytes, threadgroup memory) persists across dispatches
// as in MTLComputeCommandEncoder.
class MetalCommandBuffer {
 public:
  virtual ~MetalCommandBuffer() = default;
  virtual void set_pipeline(const MetalPipeline& pipeline) = 0;
  // Binds [offset, offset + length) of buffer at [[buffer(index)]]. `length` is the range the
  // kernel may touch: the Apple layer ignores it, the emulator binds exactly that range so
  // an out-of-bounds access is caught. offset is aligned to the widest type the kernel reads
  // through that argument (4 bytes for float, 2 for half and quantised blocks).
  virtual void set_buffer(const MetalBuffer& buffer, size_t offset, size_t length,
                          uint32_t index) = 0;
  // Copies `length` (< 4 KiB) bytes at `data` now (setBytes), bound at [[buffer(index)]].
  virtual void set_bytes(const void* data, size_t length, uint32_t index) = 0;
  // Dynamic threadgroup memory at [[threadgroup(index)]]; length a multiple of 16.
  virtual void set_threadgroup_memory(size_t length, uint32_t index) = 0;
  virtual void dispatch_threadgroups(MetalSize groups, MetalSize threads_per_group) = 0;
  // memoryBarrier(BarrierScopeBuffers): later dispatches see earlier dispatches' writes.
  virtual void memory_barrier() = 0;
  // Before the CPU reads a managed-storage buffer that this or an earlier command buffer of
  // the queue wrote: records a blit synchronizeResource. A no-op for shared storage.
  virtual void synchronize_for_host(const MetalBuffer& buffer) = 0;
  // Ends encoding and submits. No more recording afterwards.
  virtual void commit() = 0;
  // Waits for completion; throws torchless::Error carrying the command buffer's error text
  // (status and localizedDescription on Apple, the emulator's message when emulated).
  virtual void wait() = 0;
};

class MetalDevice {
 public:
  virtual ~MetalDevice() = default;
  virtual const MetalDeviceInfo& info() const = 0;
  // A new zero-filled buffer: shared storage with unified memory, managed storage without.
  // Throws Error when the allocation fails.
  virtual std::shared_ptr<MetalBuffer> new_buffer(size_t length) = 0;
  // Wraps host memory without a copy (newBufferWithBytesNoCopy, no deallocator). `data` must
  // be aligned to the system page size and `length` a multiple of it (the caller rounds, see
  // system_page_size(); never assume 4 KiB) and no larger than info().max_buffer_length. The
  // caller keeps the memory alive and mapped for the buffer's lifetime. The GPU only reads it.
  virtual std::shared_ptr<MetalBuffer> wrap_host_memory(const void* data, size_t length) = 0;
  // The pipeline of kernel function `kernel_name`, compiled on first use and cached by the
  // device for its lifetime. Throws Error with the compiler's message, or when the kernel
  // does not exist or its pipeline reports zero threads (incompatible with this device).
  virtual const MetalPipeline& pipeline(std::string_view kernel_name) = 0;
  // The names of every kernel the device's library holds (the registered host names of the
  // shader sources the build compiled), sorted.
  virtual std::vector<std::string> kernel_names() const = 0;
  virtual std::unique_ptr<MetalCommandBuffer> new_command_buffer() = 0;
};

// The emulated device: kernels run on the CPU through the MSL emulator. In builds without it
// (TORCHLESS_METAL_EMULATOR off) these come from no_emulator.cpp: unavailable, and creating
// the device throws the "not built" message. simd_width 0 takes TORCHLESS_MSL_SIMD_WIDTH from the
// environment, else 32.
struct EmulatedMetalOptions {
  uint32_t simd_width = 0;
  // maxBufferLength to report and enforce; 0: 1 TiB. Tests set it small to exercise the
  // split of large weight files into overlapping views.
  uint64_t max_buffer_length = 0;
  // false models a GPU without unified memory (an Intel Mac's AMD GPU): every buffer has a
  // CPU copy (contents()) and a GPU copy that kernels use, moved only by did_modify_range
  // and synchronize_for_host, as with managed storage; wrapping host memory is refused.
  bool unified_memory = true;
  // false models a GPU of another vendor (an Intel Mac's integrated GPU with unified memory):
  // weights are copied, not wrapped.
  bool apple_gpu = true;
  // false models a GPU without simdgroup matrices: the backend must not use the GEMM kernels.
  bool simdgroup_matrix = true;
};
std::unique_ptr<MetalDevice> create_emulated_metal_device(const EmulatedMetalOptions& options = {});
// Never throws; says in *reason (when non-null) what the device is, or why it is not built.
bool emulated_metal_available(std::string* reason);

// The Apple device: the system default device, its queue and the library compiled from the
// embedded shader sources. In builds without it (not Apple, or TORCHLESS_METAL off) these come
// from no_apple.cpp: no device, and the reason is the "not built" message.
// apple_metal_available() never throws; on false it says why in *reason (when non-null).
// With gate = false the device is created even when its GPU family or SIMD width is not
// supported (`metal-selftest --compile-only` on CI's virtual GPUs): only to compile.
bool apple_metal_available(std::string* reason);
// Whether the system has any Metal device at all, supported or not (never throws).
bool apple_metal_device_present();
std::unique_ptr<MetalDevice> create_apple_metal_device(bool gate = true);

}  // namespace torchless::metal
