#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]], uint i [[thread_position_in_threadgroup]]) {
  threadgroup float partials[32];
  partials[i % 32] = v[i];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  v[i] = partials[0];
}
