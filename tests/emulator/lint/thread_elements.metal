#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  simdgroup_float8x8 m = simdgroup_float8x8(1.0f);
  v[i] = m.thread_elements()[0];
}
