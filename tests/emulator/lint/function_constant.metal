#include <metal_stdlib>
using namespace metal;

constant bool kHasBias [[function_constant(0)]];

kernel void k(device float* v [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  v[i] = kHasBias ? 1.0f : 0.0f;
}
