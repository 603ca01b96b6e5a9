#include <metal_stdlib>
using namespace metal;

threadgroup float partials[32];

kernel void k(device float* v [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
  partials[tid % 32] = v[tid];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  v[tid] = partials[0];
}
