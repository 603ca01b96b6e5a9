// Prompt-processing GEMM, y[t, r] = sum_k x[t, k] W[r, k], on simdgroup 8x8 matrices.
// A threadgroup of four simdgroups owns a 32-token x 32-row output tile and walks K in steps of
// 32: all threads stage x (as X[token][k]) and the dequantised weights (transposed, as
// Wt[k][row]) in threadgroup memory, zero-padded past the edges, so the inner loop needs no
// bounds checks; each simdgroup accumulates a 16x16 sub-tile in four float 8x8 accumulators.
// The result goes through threadgroup memory so edge tiles are masked at the store.
// Threadgroup memory: 2 * 32 * 32 floats (8 KiB). Threads: 4 * simdgroup width.
#include "metal_common.h"

constant constexpr uint kGemmTile = 32;

template <int kType>
inline void gemm_stage(constant MatmulArgs& args, device const char* w, device const float* x,
                       threadgroup float* x_tile, threadgroup float* wt_tile, uint token0,
                       uint row0, uint k0, uint tid, uint threads) {
  const uint cols = uint(args.cols);
  for (uint e = tid; e < kGemmTile * kGemmTile; e += threads) {
    const uint r = e / kGemmTile;
    const uint c = e % kGemmTile;
    const uint k = k0 + c;
    const bool k_ok = k < cols;
    const uint token = token0 + r;
    x_tile[e] = (k_ok && token < uint(args.n_tokens)) ? x[uint64_t(token) * cols + k] : 0.0f;
    const uint row = row0 + r;
    wt_tile[c * kGemmTile + r] =
        (k_ok && row < uint(args.rows))
            ? weight_element<kType>(w + uint64_t(row) * uint64_t(args.w_row_bytes), k)
            : 0.0f;
  }
}

// The chunked types (weight_chunk): x is staged as above; each of the 64 (row, half) pairs of
// the weight tile is one 16-element chunk, so the block header is read once per chunk. cols
// is a multiple of 32 for these types, so no chunk crosses the K edge.
template <int kType>
inline void gemm_stage_chunks(constant MatmulArgs& args, device const char* w,
                              device const float* x, threadgroup float* x_tile,
                              threadgroup float* wt_tile, uint token0, uint row0, uint k0,
                              uint tid, uint threads) {
  const uint cols = uint(args.cols);
  for (uint e = tid; e < kGemmTile * kGemmTile; e += threads) {
    const uint k = k0 + e % kGemmTile;
    const uint token = token0 + e / kGemmTile;
    x_tile[e] = (k < cols && token < uint(args.n_tokens)) ? x[uint64_t(token) * cols + k] : 0.0f;
  }
  for (uint e = tid; e < 2 * kGemmTile; e += threads) {
    const uint r = e / 2;
    const uint c0 = (e % 2) * kChunk;
    const uint row = row0 + r;
    float v[kChunk];
    if (row < uint(args.rows)) {
      weight_chunk<kType>(w + uint64_t(row) * uint64_t(args.w_row_bytes), (k0 + c0) / kChunk, v);
    } else {
      for (uint i = 0; i < kChunk; ++i) v[i] = 0.0f;
    }
    for (uint i = 0; i < kChunk; ++i) wt_tile[(c0 + i) * kGemmTile + r] = v[i];
  }
}

template <int kType>
inline void gemm_tile(constant MatmulArgs& args, device const char* w, device const float* x,
                      device float* y, threadgroup float* smem, uint3 group, uint tid,
                      uint threads, uint simdgroup) {
  threadgroup float* x_tile = smem;
  threadgroup float* wt_tile = smem + kGemmTile * kGemmTile;
  const uint row0 = group.x * kGemmTile;
  const uint token0 = group.y * kGemmTile;
  const uint sub_token = (simdgroup / 2) * 16;
  const uint sub_row = (simdgroup % 2) * 16;
  simdgroup_float8x8 acc[4];
  for (uint i = 0; i < 4; ++i) acc[i] = simdgroup_float8x8(0.0f);
  for (uint k0 = 0; k0 < uint(args.cols); k0 += kGemmTile) {
    if (weight_is_chunked(kType)) {
      gemm_stage_chunks<kType>(args, w, x, x_tile, wt_tile, token0, row0, k0, tid, threads);
    } else {
      gemm_stage<kType>(args, w, x, x_tile, wt_tile, token0, row0, k0, tid, threads);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint kk = 0; kk < kGemmTile; kk += 8) {
      simdgroup_float8x8 a[2];
      simdgroup_float8x8 b[2];
      for (uint i = 0; i < 2; ++i) {
        simdgroup_load(a[i], x_tile + (sub_token + 8 * i) * kGemmTile + kk, kGemmTile);
        simdgroup_load(b[i], wt_tile + kk * kGemmTile + sub_row + 8 * i, kGemmTile);
      }
      for (uint i = 0; i < 2; ++i) {
        for (uint j = 0; j < 2; ++j) {
          simdgroup_multiply_accumulate(acc[2 * i + j], a[i], b[j], acc[2 * i + j]);
        }
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  threadgroup float* out_tile = smem;  // [token][row], free again after the last barrier
  for (uint i = 0; i < 2; ++i) {
    for (uint j = 0; j < 2; ++j) {
      simdgroup_store(acc[2 * i + j],
                      out_tile + (sub_token + 8 * i) * kGemmTile + sub_row + 8 * j, kGemmTile);
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint e = tid; e < kGemmTile * kGemmTile; e += threads) {
    const uint token = token0 + e / kGemmTile;
    const uint row = row0 + e % kGemmTile;
    if (token < uint(args.n_tokens) && row < uint(args.rows)) {
      y[uint64_t(token) * uint(args.rows) + row] = out_tile[e];
    }
  }
}

template <int kType>
kernel void gemm_tile_kernel(constant MatmulArgs& args [[buffer(0)]],
                             device const char* w [[buffer(1)]],
                             device const float* x [[buffer(2)]],
                             device float* y [[buffer(3)]],
                             threadgroup float* smem [[threadgroup(0)]],
                             uint3 group [[threadgroup_position_in_grid]],
                             uint tid [[thread_index_in_threadgroup]],
                             uint3 group_size [[threads_per_threadgroup]],
                             uint simdgroup [[simdgroup_index_in_threadgroup]]) {
  gemm_tile<kType>(args, w, x, y, smem, group, tid, group_size.x, simdgroup);
}

template [[host_name("matmul_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightF32>) gemm_tile_kernel<kWeightF32>;
template [[host_name("matmul_f16_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightF16>) gemm_tile_kernel<kWeightF16>;
template [[host_name("matmul_bf16_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightBF16>) gemm_tile_kernel<kWeightBF16>;
template [[host_name("matmul_q8_0_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ8_0>) gemm_tile_kernel<kWeightQ8_0>;
template [[host_name("matmul_q4_0_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ4_0>) gemm_tile_kernel<kWeightQ4_0>;
template [[host_name("matmul_q4_K_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ4_K>) gemm_tile_kernel<kWeightQ4_K>;
template [[host_name("matmul_q6_K_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ6_K>) gemm_tile_kernel<kWeightQ6_K>;
template [[host_name("matmul_q4_1_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ4_1>) gemm_tile_kernel<kWeightQ4_1>;
template [[host_name("matmul_q5_0_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ5_0>) gemm_tile_kernel<kWeightQ5_0>;
template [[host_name("matmul_q5_1_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ5_1>) gemm_tile_kernel<kWeightQ5_1>;
template [[host_name("matmul_q2_K_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ2_K>) gemm_tile_kernel<kWeightQ2_K>;
template [[host_name("matmul_q3_K_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ3_K>) gemm_tile_kernel<kWeightQ3_K>;
template [[host_name("matmul_q5_K_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightQ5_K>) gemm_tile_kernel<kWeightQ5_K>;
template [[host_name("matmul_iq4_nl_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightIQ4_NL>) gemm_tile_kernel<kWeightIQ4_NL>;
template [[host_name("matmul_iq4_xs_kernel")]] [[kernel]] decltype(gemm_tile_kernel<kWeightIQ4_XS>) gemm_tile_kernel<kWeightIQ4_XS>;
