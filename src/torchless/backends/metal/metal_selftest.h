#pragma once
// The Metal self-test behind `torchless metal-selftest`: compiles every kernel of the Metal
// backend into a pipeline, then runs the backend conformance cases (conformance_cases.h: the
// sizes, inputs and error bounds of tests/backends) on the Metal backend and on the CPU backend
// and prints a pass/fail table. In builds without any Metal
// device layer it comes from no_metal.cpp and only says so.
#include <cstdint>
#include <string>

namespace torchless::metal {

// Exit statuses: 0 all passed, 1 a check failed, kSelftestUnavailable no usable Metal GPU (the
// reason is printed; CI runners without a GPU treat it as "skipped").
constexpr int kSelftestUnavailable = 2;

struct MetalSelftestOptions {
  bool emulated = false;  // run the same checks through the MSL emulator, anywhere
  // Compile the library and every pipeline without the GPU-family gate and run nothing, so a
  // virtual or older GPU (CI's macOS runners report family Apple5) still exercises the
  // Objective-C++ layer and Apple's shader compiler: 0 when everything compiled, 1 otherwise.
  bool compile_only = false;
  uint64_t seed = 0;   // added to every case's seed; 0 runs the conformance suite's inputs
  std::string filter;  // run only the checks whose name contains this text
};

int run_metal_selftest(const MetalSelftestOptions& options);

}  // namespace torchless::metal
