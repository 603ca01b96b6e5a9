#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]],
              int gid [[thread_position_in_grid]]) {
  v[gid] = 1.0f;
}
