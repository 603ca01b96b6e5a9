// One math function in its three spellings, so the tests can see which variant the unqualified
// name resolves to under each Options::math_functions, on every OS thread of a dispatch.
#include <metal_stdlib>
using namespace metal;

kernel void math_spellings(device const float* x [[buffer(0)]],
                           device float* unqualified [[buffer(1)]],
                           device float* fast_variant [[buffer(2)]],
                           device float* precise_variant [[buffer(3)]],
                           uint gid [[thread_position_in_grid]]) {
  unqualified[gid] = sin(x[gid]) + exp(x[gid]);
  fast_variant[gid] = fast::sin(x[gid]) + fast::exp(x[gid]);
  precise_variant[gid] = precise::sin(x[gid]) + precise::exp(x[gid]);
}
