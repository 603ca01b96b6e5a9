// init_backend and discover_backends: which backends this build has, and which can run here.
// The Metal backend is compiled in only when CMake defines TORCHLESS_HAS_METAL (the Apple
// device layer) or TORCHLESS_HAS_METAL_EMULATOR (the CPU emulation of Metal, for tests).
#include <cstdio>
#include <string>
#include <utility>

#include "torchless/backends/backend.h"
#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/core/error.h"

#if defined(TORCHLESS_HAS_METAL) || defined(TORCHLESS_HAS_METAL_EMULATOR)
#include "torchless/backends/metal/metal_factory.h"
#endif

namespace torchless {
namespace {

// Each of these two is used only in the configurations without its backend (clang's
// -Wunused-const-variable, an error with -Werror, flags it in the others).
[[maybe_unused]] constexpr std::string_view kMetalNotBuilt =
    "torchless was built without the Metal backend (configure with -DTORCHLESS_METAL=ON on "
    "macOS)";
constexpr std::string_view kCudaNotBuilt =
    "this build of torchless has no CUDA backend (torchless has none yet): use --backend cpu";
[[maybe_unused]] constexpr std::string_view kEmulatorNotBuilt =
    "torchless was built without the emulated Metal backend (configure with "
    "-DTORCHLESS_METAL_EMULATOR=ON)";
constexpr std::string_view kValidNames = "auto, cpu, metal, cuda, metal-emulated";

BackendInfo metal_info() {
#if defined(TORCHLESS_HAS_METAL)
  return metal_backend_info();
#else
  return BackendInfo{"metal", false, std::string(kMetalNotBuilt)};
#endif
}

BackendInfo cuda_info() {
  return BackendInfo{"cuda", false, std::string(kCudaNotBuilt)};
}

BackendInfo metal_emulated_info() {
#if defined(TORCHLESS_HAS_METAL_EMULATOR)
  return metal_emulated_backend_info();
#else
  return BackendInfo{"metal-emulated", false, std::string(kEmulatorNotBuilt)};
#endif
}

std::unique_ptr<Backend> make_metal(const BackendOptions& options) {
#if defined(TORCHLESS_HAS_METAL)
  const BackendInfo info = metal_backend_info();
  if (!info.available) fail("the Metal backend is unavailable: {}", info.detail);
  return make_metal_backend(options, false);
#else
  (void)options;
  fail("{}", kMetalNotBuilt);
#endif
}

std::unique_ptr<Backend> make_metal_emulated(const BackendOptions& options) {
#if defined(TORCHLESS_HAS_METAL_EMULATOR)
  static bool warned = false;  // once per process, however many backends a tool opens
  if (!std::exchange(warned, true)) {
    std::fprintf(stderr,
                 "warning: metal-emulated runs the Metal kernels on a CPU emulator of the GPU, "
                 "for testing; it is far slower than --backend cpu\n");
  }
  return make_metal_backend(options, true);
#else
  (void)options;
  fail("{}", kEmulatorNotBuilt);
#endif
}

}  // namespace

std::unique_ptr<Backend> init_backend(BackendPreference pref, const BackendOptions& options) {
  switch (pref) {
    case BackendPreference::Cpu:
      return std::make_unique<CpuBackend>(options);
    case BackendPreference::Metal:
      return make_metal(options);
    case BackendPreference::Cuda:
      fail("{}", kCudaNotBuilt);
    case BackendPreference::Auto:
      if (metal_info().available) return make_metal(options);
      if (cuda_info().available) fail("{}", kCudaNotBuilt);
      return std::make_unique<CpuBackend>(options);
  }
  fail("unknown backend preference {}", static_cast<int>(pref));
}

std::unique_ptr<Backend> init_backend(std::string_view name, const BackendOptions& options) {
  if (name == "metal-emulated") return make_metal_emulated(options);
  return init_backend(parse_backend_preference(name), options);
}

std::vector<BackendInfo> discover_backends() {
  return {CpuBackend::info(), metal_info(), cuda_info(), metal_emulated_info()};
}

BackendPreference parse_backend_preference(std::string_view name) {
  if (name == "auto") return BackendPreference::Auto;
  if (name == "cpu") return BackendPreference::Cpu;
  if (name == "metal") return BackendPreference::Metal;
  if (name == "cuda") return BackendPreference::Cuda;
  if (name == "metal-emulated") {
    fail("'metal-emulated' is not a backend preference; pass it to init_backend by name");
  }
  fail("unknown backend '{}' (valid: {})", name, kValidNames);
}

}  // namespace torchless
