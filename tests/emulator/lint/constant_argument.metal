#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]], constant float scale [[buffer(1)]],
              uint gid [[thread_position_in_grid]]) {
  v[gid] *= scale;
}
