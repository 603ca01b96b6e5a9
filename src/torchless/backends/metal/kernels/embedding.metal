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

kernel void embedding_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                               device const char* table [[buffer(1)]],
                               device const int32_t* ids [[buffer(2)]],
                               device float* out [[buffer(3)]],
                               uint3 group [[threadgroup_position_in_grid]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kWeightF32>(args, table, ids, out, group.x, tid, group_size.x);
}

kernel void embedding_f16_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                               device const char* table [[buffer(1)]],
                               device const int32_t* ids [[buffer(2)]],
                               device float* out [[buffer(3)]],
                               uint3 group [[threadgroup_position_in_grid]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kWeightF16>(args, table, ids, out, group.x, tid, group_size.x);
}

kernel void embedding_bf16_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                               device const char* table [[buffer(1)]],
                               device const int32_t* ids [[buffer(2)]],
                               device float* out [[buffer(3)]],
                               uint3 group [[threadgroup_position_in_grid]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kWeightBF16>(args, table, ids, out, group.x, tid, group_size.x);
}

kernel void embedding_q8_0_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                               device const char* table [[buffer(1)]],
                               device const int32_t* ids [[buffer(2)]],
                               device float* out [[buffer(3)]],
                               uint3 group [[threadgroup_position_in_grid]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kWeightQ8_0>(args, table, ids, out, group.x, tid, group_size.x);
}

kernel void embedding_q4_0_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                               device const char* table [[buffer(1)]],
                               device const int32_t* ids [[buffer(2)]],
                               device float* out [[buffer(3)]],
                               uint3 group [[threadgroup_position_in_grid]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kWeightQ4_0>(args, table, ids, out, group.x, tid, group_size.x);
}

kernel void embedding_q4_K_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                               device const char* table [[buffer(1)]],
                               device const int32_t* ids [[buffer(2)]],
                               device float* out [[buffer(3)]],
                               uint3 group [[threadgroup_position_in_grid]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kWeightQ4_K>(args, table, ids, out, group.x, tid, group_size.x);
}

kernel void embedding_q6_K_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                               device const char* table [[buffer(1)]],
                               device const int32_t* ids [[buffer(2)]],
                               device float* out [[buffer(3)]],
                               uint3 group [[threadgroup_position_in_grid]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint3 group_size [[threads_per_threadgroup]]) {
  embedding_row<kWeightQ6_K>(args, table, ids, out, group.x, tid, group_size.x);
}

kernel void embedding_q4_1_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                  device const char* table [[buffer(1)]],
                                  device const int32_t* ids [[buffer(2)]],
                                  device float* out [[buffer(3)]],
                                  uint group [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightQ4_1>(args, table, ids, out, group, tid, threads);
}

kernel void embedding_q5_0_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                  device const char* table [[buffer(1)]],
                                  device const int32_t* ids [[buffer(2)]],
                                  device float* out [[buffer(3)]],
                                  uint group [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightQ5_0>(args, table, ids, out, group, tid, threads);
}

kernel void embedding_q5_1_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                  device const char* table [[buffer(1)]],
                                  device const int32_t* ids [[buffer(2)]],
                                  device float* out [[buffer(3)]],
                                  uint group [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightQ5_1>(args, table, ids, out, group, tid, threads);
}

kernel void embedding_q2_K_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                  device const char* table [[buffer(1)]],
                                  device const int32_t* ids [[buffer(2)]],
                                  device float* out [[buffer(3)]],
                                  uint group [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightQ2_K>(args, table, ids, out, group, tid, threads);
}

kernel void embedding_q3_K_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                  device const char* table [[buffer(1)]],
                                  device const int32_t* ids [[buffer(2)]],
                                  device float* out [[buffer(3)]],
                                  uint group [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightQ3_K>(args, table, ids, out, group, tid, threads);
}

kernel void embedding_q5_K_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                  device const char* table [[buffer(1)]],
                                  device const int32_t* ids [[buffer(2)]],
                                  device float* out [[buffer(3)]],
                                  uint group [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightQ5_K>(args, table, ids, out, group, tid, threads);
}

kernel void embedding_iq4_nl_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                    device const char* table [[buffer(1)]],
                                    device const int32_t* ids [[buffer(2)]],
                                    device float* out [[buffer(3)]],
                                    uint group [[threadgroup_position_in_grid]],
                                    uint tid [[thread_index_in_threadgroup]],
                                    uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightIQ4_NL>(args, table, ids, out, group, tid, threads);
}

kernel void embedding_iq4_xs_kernel(constant EmbeddingArgs& args [[buffer(0)]],
                                    device const char* table [[buffer(1)]],
                                    device const int32_t* ids [[buffer(2)]],
                                    device float* out [[buffer(3)]],
                                    uint group [[threadgroup_position_in_grid]],
                                    uint tid [[thread_index_in_threadgroup]],
                                    uint threads [[threads_per_threadgroup]]) {
  embedding_row_chunks<kWeightIQ4_XS>(args, table, ids, out, group, tid, threads);
}
