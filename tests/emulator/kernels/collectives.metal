// Every simdgroup function once, so the tests can compare each lane's result with a value
// computed by hand. Threads with index >= args.n return first (inactive lanes).
#include <metal_stdlib>
#include "emulator_test_args.h"
using namespace metal;

kernel void simd_collectives(constant SimdArgs& args [[buffer(0)]],
                             device const float* x [[buffer(1)]],
                             device float* out [[buffer(2)]],
                             uint tid [[thread_index_in_threadgroup]],
                             uint tiisg [[thread_index_in_simdgroup]],
                             uint width [[threads_per_simdgroup]]) {
  if (tid >= args.n) {
    return;
  }
  const float v = x[tid];
  device float* o = out + tid * kSimdOutputs;
  o[kOutSum] = simd_sum(v);
  o[kOutMax] = simd_max(v);
  o[kOutMin] = simd_min(v);
  o[kOutPrefixInclusive] = simd_prefix_inclusive_sum(v);
  o[kOutPrefixExclusive] = simd_prefix_exclusive_sum(v);
  o[kOutShuffle] = simd_shuffle(v, ushort((tiisg + args.lane) % width));
  o[kOutShuffleDown] = simd_shuffle_down(v, ushort(args.delta));
  o[kOutShuffleUp] = simd_shuffle_up(v, ushort(args.delta));
  o[kOutShuffleXor] = simd_shuffle_xor(v, ushort(args.mask));
  o[kOutBroadcast] = simd_broadcast(v, ushort(args.lane));
  o[kOutAll] = simd_all(v > -0.5f) ? 1.0f : 0.0f;
  o[kOutAny] = simd_any(v > 0.9f) ? 1.0f : 0.0f;
  o[kOutProduct] = simd_product(1.0f + v * 0.01f);
  o[kOutBroadcastFirst] = simd_broadcast_first(v);
  simdgroup_barrier(mem_flags::mem_none);
}

// Vector and integer collectives.
kernel void simd_vector_int(device const float4* x [[buffer(0)]],
                            device const int* k [[buffer(1)]],
                            device float4* sums [[buffer(2)]],
                            device int* ints [[buffer(3)]],
                            uint tid [[thread_index_in_threadgroup]]) {
  sums[tid] = simd_sum(x[tid]);
  ints[tid * 4 + 0] = simd_sum(k[tid]);
  ints[tid * 4 + 1] = simd_max(k[tid]);
  ints[tid * 4 + 2] = simd_or(k[tid]);
  ints[tid * 4 + 3] = simd_xor(k[tid]);
}

// A threadgroup tree reduction through threadgroup memory: correct only if every barrier
// separates the writes of one level from the reads of the next.
kernel void threadgroup_tree_sum(device const float* x [[buffer(0)]],
                                 device float* sums [[buffer(1)]],
                                 threadgroup float* shared [[threadgroup(0)]],
                                 uint group [[threadgroup_position_in_grid]],
                                 uint tid [[thread_index_in_threadgroup]],
                                 uint ntg [[threads_per_threadgroup]]) {
  shared[tid] = x[group * ntg + tid];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint stride = ntg / 2; stride > 0; stride /= 2) {
    if (tid < stride) {
      shared[tid] += shared[tid + stride];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  if (tid == 0) {
    sums[group] = shared[0];
  }
}

// Writes every thread-position attribute: 3 uints per attribute, 11 attributes per thread.
kernel void thread_positions(device uint* out [[buffer(0)]],
                             uint3 gid [[thread_position_in_grid]],
                             uint3 tgid [[threadgroup_position_in_grid]],
                             uint3 tid [[thread_position_in_threadgroup]],
                             uint3 tptg [[threads_per_threadgroup]],
                             uint3 tgpg [[threadgroups_per_grid]],
                             uint3 tpg [[threads_per_grid]],
                             ushort index [[thread_index_in_threadgroup]],
                             uint sgitg [[simdgroup_index_in_threadgroup]],
                             uint tiisg [[thread_index_in_simdgroup]],
                             uint width [[threads_per_simdgroup]],
                             uint nsg [[simdgroups_per_threadgroup]]) {
  const uint linear = (gid.z * tpg.y + gid.y) * tpg.x + gid.x;
  device uint* o = out + linear * 33;
  const uint3 values[6] = {gid, tgid, tid, tptg, tgpg, tpg};
  for (int i = 0; i < 6; ++i) {
    o[i * 3 + 0] = values[i].x;
    o[i * 3 + 1] = values[i].y;
    o[i * 3 + 2] = values[i].z;
  }
  const uint scalars[5] = {uint(index), sgitg, tiisg, width, nsg};
  for (int i = 0; i < 5; ++i) {
    o[18 + i * 3] = scalars[i];
    o[19 + i * 3] = 0;
    o[20 + i * 3] = 0;
  }
}
