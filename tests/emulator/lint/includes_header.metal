#include <metal_stdlib>
using namespace metal;
#include "lint_header.h"

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = halve(v[gid]);
}
