// Fused causal attention over the KV cache (flash decoding), for decode and prefill.
// Grid (splits, KV heads, query tokens); a threadgroup holds one simdgroup per query head of
// its KV head (GQA: the group's heads read the same K/V rows together). Each simdgroup walks
// its split of the visible keys with an online softmax: running max m, running sum l and a
// float output accumulator rescaled whenever m grows. Lanes split head_dim (at most
// kMaxDimsPerLane per lane) and one simd_sum gives each score. With one split the kernel
// normalises and writes the output; otherwise it writes (acc, m, l) partials that
// attention_merge_kernel combines. Everything accumulates in float; caches are F32, F16 or Q8_0
// (kv_at/kv_load of metal_common.h).
#include "metal_common.h"

constant constexpr uint kMaxDimsPerLane = 8;

struct FlashPlace {
  uint head;
  uint kv_head;
  uint token;
  uint split;
  uint lane;
  uint width;
};

template <typename T>
inline void flash_attention(constant AttentionArgs& args, device const float* q,
                            device const T* k_cache, device const T* v_cache,
                            device float* out, device float* partials, FlashPlace place) {
  const uint head_dim = uint(args.head_dim);
  const uint kv_stride = uint(args.n_kv_heads) * head_dim;
  const int position = args.pos0 + int(place.token);
  const uint first = args.window > 0 ? uint(max(0, position - args.window + 1)) : 0u;
  const uint begin = max(first, place.split * uint(args.split_len));
  const uint end = min(uint(position) + 1, (place.split + 1) * uint(args.split_len));
  const uint64_t q_row = uint64_t(place.token) * uint(args.n_heads) + place.head;

  float q_reg[kMaxDimsPerLane];
  float acc[kMaxDimsPerLane];
  for (uint j = 0; j < kMaxDimsPerLane; ++j) {
    const uint d = place.lane + j * place.width;
    q_reg[j] = d < head_dim ? q[q_row * head_dim + d] * args.scale : 0.0f;
    acc[j] = 0.0f;
  }
  float m = -INFINITY;
  float l = 0.0f;
  for (uint p = begin; p < end; ++p) {
    const uint64_t head_start = uint64_t(p) * kv_stride + place.kv_head * head_dim;
    device const T* key = kv_at(k_cache, head_start);
    device const T* value = kv_at(v_cache, head_start);
    float partial = 0.0f;
    for (uint j = 0; j < kMaxDimsPerLane; ++j) {
      const uint d = place.lane + j * place.width;
      if (d < head_dim) partial += q_reg[j] * kv_load(key, d);
    }
    const float score = simd_sum(partial);
    const float m_new = max(m, score);
    const float correction = exp(m - m_new);
    const float weight = exp(score - m_new);
    l = l * correction + weight;
    for (uint j = 0; j < kMaxDimsPerLane; ++j) {
      const uint d = place.lane + j * place.width;
      if (d < head_dim) acc[j] = acc[j] * correction + weight * kv_load(value, d);
    }
    m = m_new;
  }

  if (args.n_splits == 1) {
    for (uint j = 0; j < kMaxDimsPerLane; ++j) {
      const uint d = place.lane + j * place.width;
      if (d < head_dim) out[q_row * head_dim + d] = acc[j] / l;
    }
    return;
  }
  device float* part = partials + (q_row * uint(args.n_splits) + place.split) * (head_dim + 2);
  for (uint j = 0; j < kMaxDimsPerLane; ++j) {
    const uint d = place.lane + j * place.width;
    if (d < head_dim) part[d] = acc[j];
  }
  if (place.lane == 0) {
    part[head_dim] = m;
    part[head_dim + 1] = l;
  }
}

inline FlashPlace flash_place(constant AttentionArgs& args, uint3 group, uint lane,
                              uint simdgroup, uint width) {
  FlashPlace place;
  place.split = group.x;
  place.kv_head = group.y;
  place.token = group.z;
  place.head = group.y * uint(args.n_heads / args.n_kv_heads) + simdgroup;
  place.lane = lane;
  place.width = width;
  return place;
}

template <typename T>
kernel void flash_attention_kernel(constant AttentionArgs& args [[buffer(0)]],
                                   device const float* q [[buffer(1)]],
                                   device const T* k_cache [[buffer(2)]],
                                   device const T* v_cache [[buffer(3)]],
                                   device float* out [[buffer(4)]],
                                   device float* partials [[buffer(5)]],
                                   uint3 group [[threadgroup_position_in_grid]],
                                   uint lane [[thread_index_in_simdgroup]],
                                   uint simdgroup [[simdgroup_index_in_threadgroup]],
                                   uint width [[threads_per_simdgroup]]) {
  flash_attention<T>(args, q, k_cache, v_cache, out, partials,
                        flash_place(args, group, lane, simdgroup, width));
}

template [[host_name("attention_kernel")]] [[kernel]] decltype(flash_attention_kernel<float>) flash_attention_kernel<float>;
template [[host_name("attention_f16_kernel")]] [[kernel]] decltype(flash_attention_kernel<half>) flash_attention_kernel<half>;
template [[host_name("attention_q8_0_kernel")]] [[kernel]] decltype(flash_attention_kernel<BlockQ8_0>) flash_attention_kernel<BlockQ8_0>;

// Combines the splits' partials of one (token, head): with M the largest split max,
// out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M). Empty splits (m = -inf) weigh 0.
// Grid (heads, tokens); threads stride over head_dim.
kernel void attention_merge_kernel(constant AttentionArgs& args [[buffer(0)]],
                                   device const float* partials [[buffer(1)]],
                                   device float* out [[buffer(2)]],
                                   uint3 group [[threadgroup_position_in_grid]],
                                   uint tid [[thread_index_in_threadgroup]],
                                   uint3 group_size [[threads_per_threadgroup]]) {
  const uint threads = group_size.x;
  const uint head_dim = uint(args.head_dim);
  const uint n_splits = uint(args.n_splits);
  const uint64_t q_row = uint64_t(group.y) * uint(args.n_heads) + group.x;
  device const float* base = partials + q_row * n_splits * (head_dim + 2);
  float m_max = -INFINITY;
  for (uint s = 0; s < n_splits; ++s) m_max = max(m_max, base[s * (head_dim + 2) + head_dim]);
  float l_total = 0.0f;
  for (uint s = 0; s < n_splits; ++s) {
    const float m = base[s * (head_dim + 2) + head_dim];
    if (m != -INFINITY) l_total += base[s * (head_dim + 2) + head_dim + 1] * exp(m - m_max);
  }
  for (uint d = tid; d < head_dim; d += threads) {
    float o = 0.0f;
    for (uint s = 0; s < n_splits; ++s) {
      const float m = base[s * (head_dim + 2) + head_dim];
      if (m != -INFINITY) o += base[s * (head_dim + 2) + d] * exp(m - m_max);
    }
    out[q_row * head_dim + d] = o / l_total;
  }
}
