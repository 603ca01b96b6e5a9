#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  double acc = v[gid];
  v[gid] = float(acc);
}
