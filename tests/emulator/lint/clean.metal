// Passes the lint: swizzle reads, comments that mention v.xy = 1 and 0.5h, a threadgroup
// parameter, half(0.5f), and a `threadgroup` word inside a string-free comment.
#include <metal_stdlib>
using namespace metal;

kernel void k(device float4* v [[buffer(0)]], threadgroup float* shared [[threadgroup(0)]],
              uint i [[thread_position_in_threadgroup]]) {
  const float2 xy = v[i].xy;
  shared[i] = xy.x + float(half(0.5f));
  threadgroup_barrier(mem_flags::mem_threadgroup);
  v[i].x = shared[0];
  if (v[i].x == v[i].y) {
    v[i] = float4(xy, 0.0f, 1.0f);
  }
}
