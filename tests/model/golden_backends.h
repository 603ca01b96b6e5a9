#pragma once
// The backends the model-level golden tests run on. A backend that is slow on this machine (the
// Metal emulator) runs the reduced subset: stories260K greedy, the llama golden model in f32,
// q8_0 and q4_0. Add a backend here with one line.
#include <algorithm>
#include <string>
#include <vector>

#include "torchless/backends/backend.h"

namespace torchless::testing {

enum class GoldenCoverage { Full, Reduced };

struct GoldenBackend {
  std::string name;  // as init_backend(name) takes it
  GoldenCoverage coverage = GoldenCoverage::Full;
};

inline std::vector<GoldenBackend> golden_backends() {
  return {
      {"cpu", GoldenCoverage::Full},
      {"metal-emulated", GoldenCoverage::Reduced},
      {"cuda", GoldenCoverage::Full},
  };
}

// golden_backends() without those this build does not contain (e.g. configured with
// -DTORCHLESS_METAL_EMULATOR=OFF); a backend that is built but fails still fails its tests.
inline std::vector<GoldenBackend> built_golden_backends() {
  const std::vector<BackendInfo> infos = discover_backends();
  std::vector<GoldenBackend> built;
  for (const auto& backend : golden_backends()) {
    const auto info = std::find_if(infos.begin(), infos.end(),
                                   [&](const BackendInfo& i) { return i.name == backend.name; });
    if (backend.name == "cpu" || (info != infos.end() && info->available)) {
      built.push_back(backend);
    }
  }
  return built;
}

}  // namespace torchless::testing
