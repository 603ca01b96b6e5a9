// Mat-vec with threadgroup-memory tiling (the spec's matmul_vec_tiled_kernel), F32 weights:
// the whole threadgroup stages args.tile floats of x in threadgroup memory, then each
// simdgroup multiplies its kRowsPerTiledSimdgroup rows against the staged tile. Useful where
// activations are not cached well; the simdgroup kernels in matmul_vec.metal are the default.
// No early return: every thread must reach every barrier, so past-the-end rows are clamped
// for reading and masked at the store.
#include "metal_common.h"

constant constexpr uint kRowsPerTiledSimdgroup = 4;

kernel void matmul_vec_tiled_kernel(constant MatmulArgs& args [[buffer(0)]],
                                    device const float* w [[buffer(1)]],
                                    device const float* x [[buffer(2)]],
                                    device float* y [[buffer(3)]],
                                    threadgroup float* x_tile [[threadgroup(0)]],
                                    uint3 group [[threadgroup_position_in_grid]],
                                    uint tid [[thread_index_in_threadgroup]],
                                    uint3 group_size [[threads_per_threadgroup]],
                                    uint lane [[thread_index_in_simdgroup]],
                                    uint simdgroup [[simdgroup_index_in_threadgroup]],
                                    uint n_simdgroups [[simdgroups_per_threadgroup]],
                                    uint width [[threads_per_simdgroup]]) {
  const uint threads = group_size.x;
  const uint rows = uint(args.rows);
  const uint cols = uint(args.cols);
  const uint tile = uint(args.tile);
  const uint row0 = (group.x * n_simdgroups + simdgroup) * kRowsPerTiledSimdgroup;
  device const float* xt = x + uint64_t(group.y) * cols;
  float sums[kRowsPerTiledSimdgroup] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (uint k0 = 0; k0 < cols; k0 += tile) {
    const uint n = min(tile, cols - k0);
    for (uint i = tid; i < n; i += threads) x_tile[i] = xt[k0 + i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint r = 0; r < kRowsPerTiledSimdgroup; ++r) {
      device const float* row = w + uint64_t(min(row0 + r, rows - 1)) * cols + k0;
      for (uint k = lane; k < n; k += width) sums[r] += row[k] * x_tile[k];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  device float* yt = y + uint64_t(group.y) * rows;
  for (uint r = 0; r < kRowsPerTiledSimdgroup; ++r) {
    const float total = simd_sum(sums[r]);
    if (lane == 0 && row0 + r < rows) yt[row0 + r] = total;
  }
}
