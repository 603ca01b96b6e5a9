// init_backend and discover_backends over the table of backends (backend_registry.h). Which
// backends a build has is decided by the files CMake compiles, never here.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/backends/backend_registry.h"
#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/core/error.h"

namespace torchless {

BackendEntry cpu_backend_entry() {
  return {"cpu", &CpuBackend::info, [](const BackendOptions& options) -> std::unique_ptr<Backend> {
            return std::make_unique<CpuBackend>(options);
          }};
}

namespace {

// In the order discover_backends() lists them.
const std::vector<BackendEntry>& backend_table() {
  static const std::vector<BackendEntry> table = {cpu_backend_entry(), metal_backend_entry(),
                                                  cuda_backend_entry(),
                                                  metal_emulated_backend_entry()};
  return table;
}

// What Auto tries, in order: a GPU when one can run here, else the CPU.
constexpr std::array<std::string_view, 3> kAutoOrder = {"metal", "cuda", "cpu"};

const BackendEntry* find_entry(std::string_view name) {
  const auto& table = backend_table();
  const auto it =
      std::find_if(table.begin(), table.end(), [&](const auto& e) { return e.name == name; });
  return it == table.end() ? nullptr : &*it;
}

std::string valid_names() {
  std::string names = "auto";
  for (const BackendEntry& entry : backend_table()) names += ", " + entry.name;
  return names;
}

std::string_view preference_name(BackendPreference pref) {
  switch (pref) {
    case BackendPreference::Cpu:
      return "cpu";
    case BackendPreference::Metal:
      return "metal";
    case BackendPreference::Cuda:
      return "cuda";
    case BackendPreference::Auto:
      return "auto";
  }
  fail("unknown backend preference {}", static_cast<int>(pref));
}

}  // namespace

std::unique_ptr<Backend> init_backend(BackendPreference pref, const BackendOptions& options) {
  return init_backend(preference_name(pref), options);
}

std::unique_ptr<Backend> init_backend(std::string_view name, const BackendOptions& options) {
  if (name == "auto") {
    for (std::string_view candidate : kAutoOrder) {
      const BackendEntry* entry = find_entry(candidate);
      if (entry != nullptr && entry->info().available) return entry->make(options);
    }
    fail("no backend can run here");
  }
  const BackendEntry* entry = find_entry(name);
  if (entry == nullptr) fail("unknown backend '{}' (valid: {})", name, valid_names());
  return entry->make(options);
}

std::vector<BackendInfo> discover_backends() {
  std::vector<BackendInfo> infos;
  for (const BackendEntry& entry : backend_table()) infos.push_back(entry.info());
  return infos;
}

BackendPreference parse_backend_preference(std::string_view name) {
  if (name == "auto") return BackendPreference::Auto;
  if (name == "cpu") return BackendPreference::Cpu;
  if (name == "metal") return BackendPreference::Metal;
  if (name == "cuda") return BackendPreference::Cuda;
  if (name == "metal-emulated") {
    fail("'metal-emulated' is not a backend preference; pass it to init_backend by name");
  }
  fail("unknown backend '{}' (valid: {})", name, valid_names());
}

}  // namespace torchless
