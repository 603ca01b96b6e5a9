#include <metal_stdlib>
using namespace metal;

static float sum_to(uint n) {
  return n == 0 ? 0.0f : float(n) + sum_to(n - 1);
}

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = sum_to(gid);
}
