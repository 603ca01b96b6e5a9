#include <metal_stdlib>
using namespace metal;

template <typename T>
inline T twice(T v) { return v * T(2); }

template [[host_name("twice_f32")]] [[kernel]] decltype(twice<float>) twice<float>;
