// Rotary position embedding in place over [n_tokens, n_heads, head_dim]: one threadgroup per
// (token, head), threads stride over the head_dim / 2 rotated pairs. inv_freq already holds any
// llama3/linear scaling, so the kernel knows no scaling scheme.
#include "metal_common.h"

kernel void rope_kernel(constant RopeArgs& args [[buffer(0)]],
                        device float* x [[buffer(1)]],
                        device const float* inv_freq [[buffer(2)]],
                        uint3 group [[threadgroup_position_in_grid]],
                        uint tid [[thread_index_in_threadgroup]],
                        uint3 group_size [[threads_per_threadgroup]]) {
  const uint threads = group_size.x;
  const uint head_dim = uint(args.head_dim);
  const uint half_dim = head_dim / 2;
  const uint token = group.x / uint(args.n_heads);
  const float pos = float(args.pos0 + int(token));
  device float* head = x + uint64_t(group.x) * head_dim;
  for (uint i = tid; i < half_dim; i += threads) {
    const float theta = pos * inv_freq[i];
    // precise::, whatever the library's math option: theta reaches the token position, and
    // fast sin/cos are bounded (2^-13 absolute) only on [-pi, pi] (MSL Table 8.2).
    const float c = precise::cos(theta);
    const float s = precise::sin(theta);
    const uint a = args.neox != 0 ? i : 2 * i;
    const uint b = args.neox != 0 ? i + half_dim : 2 * i + 1;
    const float x0 = head[a];
    const float x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
  }
}
