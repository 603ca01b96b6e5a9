#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]], uint2 gid [[thread_position_in_grid]],
              ushort2 grid [[threads_per_grid]]) {
  v[gid.y * grid.x + gid.x] = 1.0f;
}
