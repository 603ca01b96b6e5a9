#include <metal_stdlib>
using namespace metal;

kernel void k(device float4* v [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float4 a = v[i];
  a.xy = float2(1.0f, 2.0f);
  v[i] = a;
}
