// Kernel templates registered through explicit instantiations with host names, in the two
// spellings Apple's compiler accepts (MLX's decltype form and the full parameter list), so the
// tests can dispatch each variant by its host name.
#include <metal_stdlib>
using namespace metal;

template <typename T, int kScale>
kernel void scale_by(device const T* x [[buffer(0)]],
                     device float* y [[buffer(1)]],
                     uint gid [[thread_position_in_grid]]) {
  y[gid] = float(x[gid]) * float(kScale);
}

template [[host_name("scale_f32_by_3")]] [[kernel]] decltype(scale_by<float, 3>) scale_by<float, 3>;
template [[host_name("scale_i32_by_5")]] [[kernel]] decltype(scale_by<int, 5>) scale_by<int, 5>;
template [[host_name("scale_f32_by_7")]] kernel void scale_by<float, 7>(device const float*,
                                                                        device float*, uint);
