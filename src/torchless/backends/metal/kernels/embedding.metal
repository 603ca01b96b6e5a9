// Embedding lookup: out[i] = row ids[i] of the table, dequantised to F32. One threadgroup per
// id; threads stride over the columns. Quantised rows are read in place. The wrapper kernels
// are written out (no macro) because the emulator finds kernels by their source text.
#include "metal_common.h"

template <int kType>
inline void embedding_row(constant EmbeddingArgs& args, device const char* table,
                          device const int32_t* ids, device float* out, uint index, uint tid,
                          uint threads) {
  const int32_t id = ids[index];
  const uint cols = uint(args.cols);
  device float* dst = out + uint64_t(index) * cols;
  const bool valid = id >= 0 && id < args.table_rows;
  device const char* row = table + uint64_t(valid ? id : 0) * uint64_t(args.row_bytes);
  for (uint k = tid; k < cols; k += threads) dst[k] = valid ? weight_element<kType>(row, k) : 0.0f;
}

// The chunked types (weight_chunk): threads take 16-element chunks of the row.
template <int kType>
inline void embedding_row_chunks(constant EmbeddingArgs& args, device const char* table,
                                 device const int32_t* ids, device float* out, uint index,
                                 uint tid, uint threads) {
  const int32_t id = ids[index];
  const uint cols = uint(args.cols);
  device float* dst = out + uint64_t(index) * cols;
  const bool valid = id >= 0 && id < args.table_rows;
  device const char* row = table + uint64_t(valid ? id : 0) * uint64_t(args.row_bytes);
  for (uint c = tid; c < cols / kChunk; c += threads) {
    float v[kChunk];
    weight_chunk<kType>(row, c, v);
    for (uint i = 0; i < kChunk; ++i) dst[c * kChunk + i] = valid ? v[i] : 0.0f;
  }
}

template <int kType>
kernel void embedding_row_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                   device const char* table [[buffer(1)]],
                                   device const int32_t* ids [[buffer(2)]],
                                   device float* out [[buffer(3)]],
                                   uint3 group [[threadgroup_position_in_grid]],
                                   uint tid [[thread_index_in_threadgroup]],
                                   uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kType>(args, table, ids, out, group.x, tid, group_size.x);
}

template [[host_name("embedding_kernel")]] [[kernel]] decltype(embedding_row_kernel<kWeightF32>) embedding_row_kernel<kWeightF32>;
template [[host_name("embedding_f16_kernel")]] [[kernel]] decltype(embedding_row_kernel<kWeightF16>) embedding_row_kernel<kWeightF16>;
template [[host_name("embedding_bf16_kernel")]] [[kernel]] decltype(embedding_row_kernel<kWeightBF16>) embedding_row_kernel<kWeightBF16>;
template [[host_name("embedding_q8_0_kernel")]] [[kernel]] decltype(embedding_row_kernel<kWeightQ8_0>) embedding_row_kernel<kWeightQ8_0>;
template [[host_name("embedding_q4_0_kernel")]] [[kernel]] decltype(embedding_row_kernel<kWeightQ4_0>) embedding_row_kernel<kWeightQ4_0>;
template [[host_name("embedding_q4_K_kernel")]] [[kernel]] decltype(embedding_row_kernel<kWeightQ4_K>) embedding_row_kernel<kWeightQ4_K>;
template [[host_name("embedding_q6_K_kernel")]] [[kernel]] decltype(embedding_row_kernel<kWeightQ6_K>) embedding_row_kernel<kWeightQ6_K>;

template <int kType>
kernel void embedding_row_chunks_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                        device const char* table [[buffer(1)]],
                                        device const int32_t* ids [[buffer(2)]],
                                        device float* out [[buffer(3)]],
                                        uint group [[threadgroup_position_in_grid]],
                                        uint tid [[thread_index_in_threadgroup]],
                                        uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kType>(args, table, ids, out, group, tid, threads);
}

template [[host_name("embedding_q4_1_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightQ4_1>) embedding_row_chunks_kernel<kWeightQ4_1>;
template [[host_name("embedding_q5_0_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightQ5_0>) embedding_row_chunks_kernel<kWeightQ5_0>;
template [[host_name("embedding_q5_1_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightQ5_1>) embedding_row_chunks_kernel<kWeightQ5_1>;
template [[host_name("embedding_q2_K_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightQ2_K>) embedding_row_chunks_kernel<kWeightQ2_K>;
template [[host_name("embedding_q3_K_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightQ3_K>) embedding_row_chunks_kernel<kWeightQ3_K>;
template [[host_name("embedding_q5_K_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightQ5_K>) embedding_row_chunks_kernel<kWeightQ5_K>;
template [[host_name("embedding_iq4_nl_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightIQ4_NL>) embedding_row_chunks_kernel<kWeightIQ4_NL>;
template [[host_name("embedding_iq4_xs_kernel")]] [[kernel]] decltype(embedding_row_chunks_kernel<kWeightIQ4_XS>) embedding_row_chunks_kernel<kWeightIQ4_XS>;
