#include <metal_stdlib>
using namespace metal;

kernel void k(device int* v [[buffer(0)]]) {
  simdgroup_matrix<int, 8, 8> m;
  simdgroup_store(m, v, 8);
}
