#pragma once
// Helpers for the emulator's tests: the test kernels' registration, seeded random data, and
// the options of the current ctest variant (TORCHLESS_MSL_ORDER) with a given width.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "emulator/kernels/emulator_test_args.h"
#include "torchless/backends/metal/emulator/msl_emulator.h"

void mslemu_register_emulator_test();

namespace torchless::mslemu::testing {

inline void register_kernels() {
  mslemu_register_emulator_test();
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

inline Options options_with_width(int width) {
  Options o = default_options();
  o.simd_width = width;
  return o;
}

// The message of the Error a dispatch throws, or "" if it succeeds.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace torchless::mslemu::testing
