#pragma once
// The MSL emulator: runs Metal compute kernels (.metal sources compiled as C++ against the
// shim in shim/metal_stdlib) on the CPU. Each threadgroup's threads run as cooperative fibers
// on one OS thread, so threadgroup barriers, simdgroup functions and simdgroup matrices behave
// as on an Apple GPU. Design: ../shared/docs/msl-emulator.md.
//
// Building kernels (cmake/MetalEmulator.cmake):
//   torchless_add_metal_kernels(TARGET <target> NAME <registry> SOURCES a.metal b.metal ...)
// turns every .metal file into an emulator translation unit added to <target> (the .metal
// file's directory is on its include path, so `#include "metal_args.h"` works) and defines
//   void mslemu_register_<registry>();      // global namespace, idempotent, thread-safe
// which registers the kernels of those files by name. Registration is explicit, never a
// static initialiser, so it survives linking from a static library: call it (declare it
// yourself) before the first Dispatch. It throws Error if a kernel signature cannot be bound.
//
// Running a kernel (setBuffer/setBytes/setThreadgroupMemoryLength/dispatchThreadgroups):
//   mslemu::Dispatch("rms_norm_f32")
//       .bytes(0, &args, sizeof args)
//       .buffer(1, x.data(), x.size() * sizeof(float))
//       .buffer(2, y.data(), y.size() * sizeof(float))
//       .threadgroup_memory(0, 32 * sizeof(float))
//       .dispatch_threadgroups({rows, 1, 1}, {256, 1, 1});
// Every failure (unknown kernel, unbound buffer, misaligned argument, limits exceeded,
// barrier not reached by every thread, deadlock, divergent simdgroup operation, stack
// overflow) throws mslemu::Error naming the .metal file and line where it applies.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "torchless/core/error.h"

namespace torchless::mslemu {

class Error : public torchless::Error {
 public:
  using torchless::Error::Error;
};

// Order in which the scheduler resumes the threads of a threadgroup at each pass: forward
// never exposes a missing barrier, reverse and shuffle (seeded, redrawn each pass) usually do.
enum class ThreadOrder { Forward, Reverse, Shuffle };

// Which single-precision math functions an unqualified sin, exp, log, sqrt, pow, ... is, as
// MTLCompileOptions.mathFloatingPointFunctions selects on macOS 15 and later: Precise (the C
// library; what the Apple backend asks for), or Fast, each at the worst accuracy the MSL
// specification allows fast functions (shim/mslemu_fast_math.h), so that a kernel whose
// precision depends on the compile option fails here. metal::fast:: and metal::precise:: calls
// ignore the option, as on the GPU.
enum class MathFunctions { Precise, Fast };

struct Options {
  int simd_width = 32;  // 32 (Apple GPUs) or 64 (AMD GPUs in Intel Macs)
  ThreadOrder thread_order = ThreadOrder::Forward;
  uint64_t seed = 0;                  // for ThreadOrder::Shuffle
  bool reverse_threadgroups = false;  // run threadgroups last to first
  int os_threads = 1;                 // threadgroups run on this many OS threads
  MathFunctions math_functions = MathFunctions::Precise;
};

// Options from the environment: TORCHLESS_MSL_ORDER=forward|reverse|shuffle,
// TORCHLESS_MSL_SEED=<n>, TORCHLESS_MSL_SIMD_WIDTH=32|64, TORCHLESS_MSL_THREADS=<n>,
// TORCHLESS_MSL_REVERSE_GROUPS=0|1, TORCHLESS_MSL_MATH=precise|fast. Throws Error on a
// malformed value.
Options default_options();

struct Size3 {
  uint32_t x = 1, y = 1, z = 1;
};

enum class ParamRole { Buffer, Threadgroup, Builtin };

// The thread-position attributes a kernel parameter may carry.
enum class Builtin {
  ThreadPositionInGrid,
  ThreadgroupPositionInGrid,
  ThreadPositionInThreadgroup,
  ThreadsPerThreadgroup,
  ThreadgroupsPerGrid,
  ThreadsPerGrid,
  ThreadIndexInThreadgroup,
  SimdgroupIndexInThreadgroup,
  ThreadIndexInSimdgroup,
  ThreadsPerSimdgroup,
  SimdgroupsPerThreadgroup,
};

enum class ParamKind { Pointer, Reference, Value };

struct ParamInfo {
  std::string name;  // as written in the .metal source
  std::string type;  // as written, e.g. "device const float4*"
  ParamRole role = ParamRole::Buffer;
  uint32_t index = 0;  // [[buffer(i)]] / [[threadgroup(i)]]
  Builtin builtin = Builtin::ThreadPositionInGrid;
  ParamKind kind = ParamKind::Pointer;
  size_t pointee_size = 0;  // sizeof the pointee/referee (value size for builtins)
  size_t pointee_align = 0;
  bool writable = false;  // a non-const pointer/reference (device, not constant)
};

struct KernelInfo {
  std::string name;
  std::string file;                                   // the .metal path as given to the generator
  int line = 0;                                       // line of `kernel void name(`
  uint32_t max_total_threads_per_threadgroup = 1024;  // the attribute, or the GPU limit
  std::vector<ParamInfo> params;
};

// The registered kernel of that name, or nullptr.
const KernelInfo* find_kernel(std::string_view name);
// Names of every registered kernel, sorted.
std::vector<std::string> kernel_names();

class Dispatch {
 public:
  explicit Dispatch(std::string_view kernel_name);  // throws Error if unknown

  // [[buffer(i)]] device or constant pointer/reference. The memory is used in place, so
  // allocate it at its exact size to let AddressSanitizer see overruns.
  Dispatch& buffer(uint32_t index, void* data, size_t length);
  // setBytes: copied now into an exact-size allocation; at most 4 KiB.
  Dispatch& bytes(uint32_t index, const void* data, size_t length);
  // setThreadgroupMemoryLength: a multiple of 16, at most 32 KiB in total.
  Dispatch& threadgroup_memory(uint32_t index, size_t length);

  // dispatchThreadgroups(threadgroups, threadsPerThreadgroup). Runs to completion.
  void dispatch_threadgroups(Size3 threadgroups, Size3 threads_per_threadgroup,
                             const Options& options = default_options());

  const KernelInfo& kernel() const;

  struct Binding {
    void* data = nullptr;
    size_t length = 0;
    bool bound = false;
  };

 private:
  const void* kernel_;  // detail::Kernel
  std::vector<Binding> buffers_;
  std::vector<std::vector<std::byte>> bytes_;  // owned copies; indexed like buffers_
  std::vector<size_t> threadgroup_lengths_;
  std::vector<bool> threadgroup_set_;
};

}  // namespace torchless::mslemu
