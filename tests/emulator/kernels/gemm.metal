// C = A B (row-major, f32) in 32x32 tiles: 4 simdgroups each own a 16x16 quarter as 2x2
// simdgroup_float8x8 accumulators; A and B are staged through threadgroup memory 8 columns
// of K at a time. Needs a simdgroup width of 32 and 128 threads per threadgroup.
#include <metal_stdlib>
#include "emulator_test_args.h"
using namespace metal;

kernel void gemm_f32(constant GemmArgs& args [[buffer(0)]],
                     device const float* a [[buffer(1)]],
                     device const float* b [[buffer(2)]],
                     device float* c [[buffer(3)]],
                     threadgroup float* smem [[threadgroup(0)]],
                     uint2 tgid [[threadgroup_position_in_grid]],
                     uint tid [[thread_index_in_threadgroup]],
                     uint sgitg [[simdgroup_index_in_threadgroup]]) {
  threadgroup float* sa = smem;           // 32 rows x 8
  threadgroup float* sb = smem + 32 * 8;  // 8 rows x 32
  const uint row0 = tgid.y * 32;
  const uint col0 = tgid.x * 32;
  const uint sr = (sgitg / 2) * 16;
  const uint sc = (sgitg % 2) * 16;
  simdgroup_float8x8 acc[2][2];
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    }
  }
  for (uint k0 = 0; k0 < args.k; k0 += 8) {
    for (uint i = tid; i < 32 * 8; i += 128) {
      const uint r = i / 8;
      const uint kk = i % 8;
      sa[i] = (row0 + r < args.m && k0 + kk < args.k) ? a[(row0 + r) * args.k + k0 + kk] : 0.0f;
      const uint br = i / 32;
      const uint bc = i % 32;
      sb[i] = (k0 + br < args.k && col0 + bc < args.n) ? b[(k0 + br) * args.n + col0 + bc] : 0.0f;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    simdgroup_float8x8 ma[2];
    simdgroup_float8x8 mb[2];
    for (int i = 0; i < 2; ++i) {
      simdgroup_load(ma[i], sa, 8, ulong2(0, sr + 8 * i));
      simdgroup_load(mb[i], sb, 32, ulong2(sc + 8 * i, 0));
    }
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        simdgroup_multiply_accumulate(acc[i][j], ma[i], mb[j], acc[i][j]);
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  threadgroup float* tile = smem;  // 32 x 32
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      simdgroup_store(acc[i][j], tile, 32, ulong2(sc + 8 * j, sr + 8 * i));
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint i = tid; i < 32 * 32; i += 128) {
    const uint r = i / 32;
    const uint cc = i % 32;
    if (row0 + r < args.m && col0 + cc < args.n) {
      c[(row0 + r) * args.n + col0 + cc] = tile[i];
    }
  }
}

// The transposed load: C = A^T B with A stored [K, M].
kernel void gemm_at_f32(constant GemmArgs& args [[buffer(0)]],
                        device const float* at [[buffer(1)]],
                        device const float* b [[buffer(2)]],
                        device float* c [[buffer(3)]],
                        uint tiisg [[thread_index_in_simdgroup]]) {
  simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
  for (uint k0 = 0; k0 < args.k; k0 += 8) {
    simdgroup_float8x8 ma;
    simdgroup_float8x8 mb;
    simdgroup_load(ma, at + k0 * args.m, args.m, ulong2(0, 0), true);
    simdgroup_load(mb, b + k0 * args.n, args.n);
    simdgroup_multiply_accumulate(acc, ma, mb, acc);
  }
  simdgroup_store(acc, c, args.n);
}
