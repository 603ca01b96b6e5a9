#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(1)]],
              device const float* w [[buffer(1)]],
              uint gid [[thread_position_in_grid]]) {
  v[gid] = w[gid];
}
