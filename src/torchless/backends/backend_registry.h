#pragma once
// The registry's table: one entry per backend this project knows, built or not. Each backend
// defines its `*_backend_entry()` in its own folder; for a backend a build lacks, CMake compiles
// the backend's stub file instead (no_*.cpp, as MLX's no_metal.cpp), which returns
// not_built_entry(). So no `#if` chooses the platform: the build does, by file.
//
// Adding a backend: write backends/<name>/<name>_factory.cpp defining <name>_backend_entry(),
// and have CMake compile it instead of the backend's no_<name>.cpp (as backends/cuda/ does).
#include <functional>
#include <memory>
#include <string>

#include "torchless/backends/backend.h"

namespace torchless {

struct BackendEntry {
  std::string name;  // what init_backend() and --backend accept
  std::function<BackendInfo()> info;
  std::function<std::unique_ptr<Backend>(const BackendOptions&)> make;
};

// The build options a backend needs; not_built_message() says how to turn each on.
enum class BuildOption { Metal, MetalEmulator, Cuda, Nccl };

// "torchless was built without ... (how to build it)": the one message for every backend a
// build lacks.
std::string not_built_message(BuildOption missing);
// An entry whose info() says not_built_message() and whose make() throws it.
BackendEntry not_built_entry(const std::string& name, BuildOption missing);

BackendEntry cpu_backend_entry();             // registry.cpp
BackendEntry metal_backend_entry();           // metal/metal_factory.cpp, or metal/no_metal.cpp
BackendEntry metal_emulated_backend_entry();  // metal/metal_factory.cpp, or metal/no_metal.cpp
BackendEntry cuda_backend_entry();            // cuda/cuda_factory.cpp, or cuda/no_cuda.cpp

}  // namespace torchless
