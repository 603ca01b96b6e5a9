// Residual add and bias: out = a + b, with b read at i % period so one bias row broadcasts
// over every row of a.
#include "metal_common.h"

kernel void add_kernel(constant ElementwiseArgs& args [[buffer(0)]],
                       device const float* a [[buffer(1)]],
                       device const float* b [[buffer(2)]],
                       device float* out [[buffer(3)]],
                       uint gid [[thread_position_in_grid]],
                       uint grid_size [[threads_per_grid]]) {
  const uint64_t period = uint64_t(args.period);
  for (uint64_t i = gid; i < uint64_t(args.n); i += grid_size) out[i] = a[i] + b[i % period];
}
