// Passes the lint: swizzle reads, comments that mention v.xy = 1 and 0.5h, a threadgroup
// parameter, half(0.5f), and a `threadgroup` word inside a string-free comment. Apple's rules
// too: a program-scope constant, a deleted function, suffixed literals (0.5 in a comment is
// fine), all-vector position attributes, and bfloat only under a version guard.
#include <metal_stdlib>
using namespace metal;

constant constexpr float kScale = 2.0f;

struct Accumulator {
  float total;
  Accumulator(float t) : total(t) {}
  Accumulator(const thread Accumulator&) = delete;
};

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

kernel void positions(device float* v [[buffer(0)]], constant float& scale [[buffer(1)]],
                      uint3 group [[threadgroup_position_in_grid]],
                      uint3 size [[threads_per_threadgroup]],
                      uint3 tid [[thread_position_in_threadgroup]]) {
  v[group.x * size.x + tid.x] = scale * kScale * 1e-3f;
}

#if __METAL_VERSION__ >= 310
kernel void widen(device float* v [[buffer(0)]], device const bfloat* w [[buffer(1)]],
                  uint gid [[thread_position_in_grid]]) {
  v[gid] = float(w[gid]);
}
#endif
