// KV-cache store: copies F32 rows into the cache (bound at the first destination row), as F32
// or rounded to F16.
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
