#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = v[gid] * 0.1f + 1e-3f;
  v[gid] = v[gid] * 0.5;
}
