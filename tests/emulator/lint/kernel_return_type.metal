#include <metal_stdlib>
using namespace metal;

kernel float k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  return v[gid];
}
