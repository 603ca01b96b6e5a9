#include <metal_stdlib>
using namespace metal;

float kScale = 2.0f;
constant float kOffset;

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = v[gid] * kScale + kOffset;
}
