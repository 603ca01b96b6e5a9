// Paged KV cache ops of the continuous-batching engine (backend.h, PagedAttentionParams).
// paged_kv_store: row i of src (F32) goes to pool row slots[i], as F32 or rounded to F16.
// paged_attention: one simdgroup per (query head, token) walks the token's visible positions
// of its own sequence in order, through the sequence's block table, with an online softmax;
// lanes split head_dim (at most 8 dimensions each). Nothing depends on the other tokens of the
// batch or on the grid's size, so a token's result is the same bits in any batch.
#include "metal_common.h"

template <typename T>
kernel void paged_kv_store(constant PagedStoreArgs& args [[buffer(0)]],
                           device const float* src [[buffer(1)]],
                           device const int* slots [[buffer(2)]],
                           device T* pool [[buffer(3)]],
                           uint gid [[thread_position_in_grid]],
                           uint grid_size [[threads_per_grid]]) {
  const uint64_t cols = uint64_t(args.cols);
  for (uint64_t i = gid; i < uint64_t(args.n); i += grid_size) {
    const uint64_t row = i / cols;
    pool[uint64_t(slots[row]) * cols + i % cols] = T(src[i]);
  }
}

template [[host_name("paged_kv_store_kernel")]] [[kernel]] decltype(paged_kv_store<float>) paged_kv_store<float>;
template [[host_name("paged_kv_store_f16_kernel")]] [[kernel]] decltype(paged_kv_store<half>) paged_kv_store<half>;

constant constexpr uint kPagedDimsPerLane = 8;

template <typename T>
kernel void paged_attention(constant PagedAttentionArgs& args [[buffer(0)]],
                            device const float* q [[buffer(1)]],
                            device const T* k_pool [[buffer(2)]],
                            device const T* v_pool [[buffer(3)]],
                            device const int* tokens [[buffer(4)]],
                            device const int* tables [[buffer(5)]],
                            device float* out [[buffer(6)]],
                            uint3 group [[threadgroup_position_in_grid]],
                            uint lane [[thread_index_in_simdgroup]],
                            uint width [[threads_per_simdgroup]]) {
  const uint head = group.x;
  const uint token = group.y;
  const uint head_dim = uint(args.head_dim);
  const uint kv_head = head / uint(args.n_heads / args.n_kv_heads);
  const uint kv_stride = uint(args.n_kv_heads) * head_dim;
  const int seq = tokens[2 * token];
  const int pos = tokens[2 * token + 1];
  const int first = args.window > 0 ? max(0, pos - args.window + 1) : 0;
  const uint bs = uint(args.block_size);
  device const int* table = tables + uint64_t(seq) * uint(args.max_blocks);
  device const float* qh = q + (uint64_t(token) * uint(args.n_heads) + head) * head_dim;

  float qv[kPagedDimsPerLane];
  float acc[kPagedDimsPerLane];
  for (uint i = 0; i < kPagedDimsPerLane; ++i) {
    const uint d = lane + i * width;
    qv[i] = d < head_dim ? qh[d] : 0.0f;
    acc[i] = 0.0f;
  }
  // Finite start: fast math may assume no infinities; exp(-3e38 - score) is 0 all the same.
  float running_max = -3.0e38f;
  float running_sum = 0.0f;
  for (int p = first; p <= pos; ++p) {
    const uint64_t row = uint64_t(table[uint(p) / bs]) * bs + uint(p) % bs;
    device const T* key = k_pool + row * kv_stride + kv_head * head_dim;
    device const T* value = v_pool + row * kv_stride + kv_head * head_dim;
    float partial = 0.0f;
    for (uint i = 0; i < kPagedDimsPerLane; ++i) {
      const uint d = lane + i * width;
      if (d < head_dim) partial += qv[i] * float(key[d]);
    }
    const float score = simd_sum(partial) * args.scale;
    const float new_max = max(running_max, score);
    const float correction = exp(running_max - new_max);
    const float weight = exp(score - new_max);
    running_sum = running_sum * correction + weight;
    for (uint i = 0; i < kPagedDimsPerLane; ++i) {
      const uint d = lane + i * width;
      if (d < head_dim) acc[i] = acc[i] * correction + weight * float(value[d]);
    }
    running_max = new_max;
  }
  device float* oh = out + (uint64_t(token) * uint(args.n_heads) + head) * head_dim;
  for (uint i = 0; i < kPagedDimsPerLane; ++i) {
    const uint d = lane + i * width;
    if (d < head_dim) oh[d] = acc[i] / running_sum;
  }
}

template [[host_name("paged_attention_kernel")]] [[kernel]] decltype(paged_attention<float>) paged_attention<float>;
template [[host_name("paged_attention_f16_kernel")]] [[kernel]] decltype(paged_attention<half>) paged_attention<half>;
