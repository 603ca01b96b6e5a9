// The spec's attention primitives for one query token at position pos0 (decode):
// attention_scores: scores[h, p] = scale * q_h . k_p over keys 0..pos0 (-inf outside a sliding
// window); weighted_sum: out[h, :] = sum_p scores[h, p] v_p (scores already softmaxed).
// GQA: query head h reads KV head h / (n_heads / n_kv_heads). Caches are F32, F16 or Q8_0 (the
// _f16 and _q8_0 kernels, read through kv_at/kv_load); arithmetic is float.
#include "metal_common.h"

inline uint first_visible_key(constant AttentionArgs& args, int position) {
  return args.window > 0 ? uint(max(0, position - args.window + 1)) : 0u;
}

// Grid (key blocks of keys_per_group, heads); each simdgroup takes one key at a time, lanes
// split head_dim and one simd_sum gives the dot product.
template <typename T>
inline void scores_block(constant AttentionArgs& args, device const float* q,
                         device const T* k_cache, device float* scores, uint3 group, uint lane,
                         uint simdgroup, uint n_simdgroups, uint width) {
  const uint head_dim = uint(args.head_dim);
  const uint head = group.y;
  const uint kv_head = head / uint(args.n_heads / args.n_kv_heads);
  const uint kv_stride = uint(args.n_kv_heads) * head_dim;
  const uint n_keys = uint(args.pos0) + 1;
  const uint first = first_visible_key(args, args.pos0);
  const uint begin = group.x * uint(args.keys_per_group);
  const uint end = min(n_keys, begin + uint(args.keys_per_group));
  device const float* qh = q + head * head_dim;
  for (uint p = begin + simdgroup; p < end; p += n_simdgroups) {
    device const T* key = kv_at(k_cache, uint64_t(p) * kv_stride + kv_head * head_dim);
    float partial = 0.0f;
    for (uint d = lane; d < head_dim; d += width) partial += qh[d] * kv_load(key, d);
    const float dot = simd_sum(partial);
    if (lane == 0) {
      scores[uint64_t(head) * uint(args.scores_stride) + p] = p >= first ? dot * args.scale : -INFINITY;
    }
  }
}

// Grid (head_dim blocks, heads); one thread per output element, looping over visible keys.
template <typename T>
inline void weighted_sum_block(constant AttentionArgs& args, device const float* scores,
                               device const T* v_cache, device float* out, uint3 group,
                               uint tid, uint threads) {
  const uint head_dim = uint(args.head_dim);
  const uint d = group.x * threads + tid;
  if (d >= head_dim) return;
  const uint head = group.y;
  const uint kv_head = head / uint(args.n_heads / args.n_kv_heads);
  const uint kv_stride = uint(args.n_kv_heads) * head_dim;
  device const float* sh = scores + uint64_t(head) * uint(args.scores_stride);
  float acc = 0.0f;
  for (uint p = first_visible_key(args, args.pos0); p <= uint(args.pos0); ++p) {
    acc += sh[p] * kv_load(kv_at(v_cache, uint64_t(p) * kv_stride + kv_head * head_dim), d);
  }
  out[head * head_dim + d] = acc;
}

template <typename T>
kernel void attention_scores(constant AttentionArgs& args [[buffer(0)]],
                             device const float* q [[buffer(1)]],
                             device const T* k_cache [[buffer(2)]],
                             device float* scores [[buffer(3)]],
                             uint3 group [[threadgroup_position_in_grid]],
                             uint lane [[thread_index_in_simdgroup]],
                             uint simdgroup [[simdgroup_index_in_threadgroup]],
                             uint n_simdgroups [[simdgroups_per_threadgroup]],
                             uint width [[threads_per_simdgroup]]) {
  scores_block<T>(args, q, k_cache, scores, group, lane, simdgroup, n_simdgroups, width);
}

template [[host_name("attention_scores_kernel")]] [[kernel]] decltype(attention_scores<float>) attention_scores<float>;
template [[host_name("attention_scores_f16_kernel")]] [[kernel]] decltype(attention_scores<half>) attention_scores<half>;
template [[host_name("attention_scores_q8_0_kernel")]] [[kernel]] decltype(attention_scores<BlockQ8_0>) attention_scores<BlockQ8_0>;

template <typename T>
kernel void weighted_sum(constant AttentionArgs& args [[buffer(0)]],
                         device const float* scores [[buffer(1)]],
                         device const T* v_cache [[buffer(2)]],
                         device float* out [[buffer(3)]],
                         uint3 group [[threadgroup_position_in_grid]],
                         uint tid [[thread_index_in_threadgroup]],
                         uint3 group_size [[threads_per_threadgroup]]) {
  weighted_sum_block<T>(args, scores, v_cache, out, group, tid, group_size.x);
}

template [[host_name("weighted_sum_kernel")]] [[kernel]] decltype(weighted_sum<float>) weighted_sum<float>;
template [[host_name("weighted_sum_f16_kernel")]] [[kernel]] decltype(weighted_sum<half>) weighted_sum<half>;
template [[host_name("weighted_sum_q8_0_kernel")]] [[kernel]] decltype(weighted_sum<BlockQ8_0>) weighted_sum<BlockQ8_0>;
