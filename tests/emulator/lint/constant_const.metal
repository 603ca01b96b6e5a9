#include <metal_stdlib>
using namespace metal;

kernel void k(constant const float* s [[buffer(0)]], device float* v [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
  v[i] = s[0];
}
