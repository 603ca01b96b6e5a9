#include <metal_stdlib>
using namespace metal;

static float first(device const float* p) { return p[0]; }
static float first(threadgroup const float* p) { return p[0]; }

kernel void k(device float* v [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  v[i] = first(v);
}
