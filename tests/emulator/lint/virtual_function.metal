#include <metal_stdlib>
using namespace metal;

struct Op {
  virtual float apply(float x) const { return x; }
};

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  v[gid] = Op().apply(v[gid]);
}
