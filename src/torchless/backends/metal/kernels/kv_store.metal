// KV-cache store: copies F32 rows into the cache (bound at the first destination row), as F32,
// rounded to F16, or quantised to Q8_0 blocks of 32 (one thread per block, the scale and
// rounding of core/quant.cpp's quantize_q8_0: d = amax / 127, codes rint(x / d)).
#include "metal_common.h"

template <typename T>
kernel void kv_store(constant ElementwiseArgs& args [[buffer(0)]],
                     device const float* src [[buffer(1)]],
                     device T* cache [[buffer(2)]],
                     uint gid [[thread_position_in_grid]],
                     uint grid_size [[threads_per_grid]]) {
  for (uint64_t i = gid; i < uint64_t(args.n); i += grid_size) cache[i] = T(src[i]);
}

template [[host_name("kv_store_kernel")]] [[kernel]] decltype(kv_store<float>) kv_store<float>;
template [[host_name("kv_store_f16_kernel")]] [[kernel]] decltype(kv_store<half>) kv_store<half>;

// args.n counts blocks.
kernel void kv_store_q8_0_kernel(constant ElementwiseArgs& args [[buffer(0)]],
                                 device const float* src [[buffer(1)]],
                                 device BlockQ8_0* cache [[buffer(2)]],
                                 uint gid [[thread_position_in_grid]],
                                 uint grid_size [[threads_per_grid]]) {
  for (uint64_t b = gid; b < uint64_t(args.n); b += grid_size) {
    device const float* x = src + b * kQBlock;
    float amax = 0.0f;
    for (int j = 0; j < kQBlock; ++j) amax = max(amax, fabs(x[j]));
    const float d = amax / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    cache[b].d = half(d);
    for (int j = 0; j < kQBlock; ++j) {
      cache[b].qs[j] = int8_t(clamp(rint(x[j] * inverse), -127.0f, 127.0f));
    }
  }
}
