#include <metal_stdlib>
using namespace metal;

static float checked(float x) {
  if (x < 0.0f) throw 1;
  return x;
}

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = checked(v[gid]);
}
