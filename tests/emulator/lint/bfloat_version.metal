#include <metal_stdlib>
using namespace metal;

kernel void k(device float* v [[buffer(0)]], device const bfloat* w [[buffer(1)]],
              uint gid [[thread_position_in_grid]]) {
#if __METAL_VERSION__ >= 310
  v[gid] = float(bfloat(w[gid]));
#else
  v[gid] = 0.0f;
#endif
}
