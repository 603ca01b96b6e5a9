#include <metal_stdlib>
using namespace metal;

// A vector threadgroup position beside a scalar threadgroup size: the emulator accepts it.
kernel void k(device float* v [[buffer(0)]], uint3 group [[threadgroup_position_in_grid]],
              uint tid [[thread_index_in_threadgroup]],
              uint threads [[threads_per_threadgroup]]) {
  v[group.x * threads + tid] = 1.0f;
}
