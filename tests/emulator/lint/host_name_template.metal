#include <metal_stdlib>
using namespace metal;

template <typename T>
kernel void scale(device T* v [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  v[i] *= T(2);
}

template [[host_name("scale_f32")]] kernel void scale<float>(device float*, uint);
template [[host_name("scale_f16")]] [[kernel]] decltype(scale<half>) scale<half>;
