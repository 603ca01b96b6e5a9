#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]],
              thread float* scratch [[buffer(1)]],
              uint gid [[thread_position_in_grid]]) {
  v[gid] = scratch[0];
}
