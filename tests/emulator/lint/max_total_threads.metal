#include <metal_stdlib>
using namespace metal;

[[max_total_threads_per_threadgroup(2048)]]
kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = 1.0f;
}
