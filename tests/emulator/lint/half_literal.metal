#include <metal_stdlib>
using namespace metal;

kernel void k(device half* v [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  v[i] = v[i] * 0.5h;
}
