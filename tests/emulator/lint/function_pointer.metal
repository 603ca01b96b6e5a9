#include <metal_stdlib>
using namespace metal;

static float twice(float x) { return 2.0f * x; }

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  float (*op)(float) = twice;
  v[gid] = op(v[gid]);
}
