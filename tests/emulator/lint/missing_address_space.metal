#include <metal_stdlib>
using namespace metal;

kernel void k(float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = 1.0f;
}
