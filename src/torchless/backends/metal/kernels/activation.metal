// SiLU and the fused SwiGLU gate: grid-stride loops so a bounded grid covers any length.
#include "metal_common.h"

inline float silu_value(float v) { return v / (1.0f + exp(-v)); }

kernel void silu_kernel(constant ElementwiseArgs& args [[buffer(0)]],
                        device float* x [[buffer(1)]],
                        uint gid [[thread_position_in_grid]],
                        uint grid_size [[threads_per_grid]]) {
  for (uint64_t i = gid; i < uint64_t(args.n); i += grid_size) x[i] = silu_value(x[i]);
}

// out = silu(gate) * up; out may alias gate (each element read before it is written).
kernel void fused_silu_mul_kernel(constant ElementwiseArgs& args [[buffer(0)]],
                                  device const float* gate [[buffer(1)]],
                                  device const float* up [[buffer(2)]],
                                  device float* out [[buffer(3)]],
                                  uint gid [[thread_position_in_grid]],
                                  uint grid_size [[threads_per_grid]]) {
  for (uint64_t i = gid; i < uint64_t(args.n); i += grid_size) out[i] = silu_value(gate[i]) * up[i];
}
