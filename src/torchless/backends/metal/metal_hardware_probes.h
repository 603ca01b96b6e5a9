#pragma once
// The three behaviours of Apple GPUs that the MSL emulator assumes without being able to check
// them (docs/msl-emulator design, "To confirm on real hardware"): the origin argument of
// simdgroup_load is (column, row); simdgroup_matrix(T) fills only the diagonal; and
// simd_shuffle_down leaves the top lanes their own value. metal-selftest runs the probe
// kernels of kernels/hardware_probes.metal on the GPU first and reports any difference, since
// the emulated kernel tests are only as good as these assumptions.
#include <string>
#include <vector>

#include "torchless/backends/metal/metal_device.h"

namespace torchless::metal {

struct ProbeOutcome {
  std::string assumption;  // what the emulator assumes, in words
  bool holds = false;
  std::string observed;  // what the device did, when it differs
};

// Runs each probe as one simdgroup on `device` (the simdgroup-matrix probes only where the
// device has simdgroup matrices). Throws Error when a probe cannot be compiled or run.
std::vector<ProbeOutcome> probe_emulator_assumptions(MetalDevice& device);

}  // namespace torchless::metal
