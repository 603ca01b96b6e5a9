#include <metal_stdlib>
using namespace metal;

struct Box {
  float x;
};

kernel void k(device float* v [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  thread Box* b = new Box{v[gid]};
  v[gid] = b->x;
  delete b;
}
