// Kernels with planted bugs; the tests expect the emulator to report each one.
#include <metal_stdlib>
#include "emulator_test_args.h"
using namespace metal;

// Threads with tid >= n return before the barrier the others wait at.
kernel void early_return_before_barrier(constant SimdArgs& args [[buffer(0)]],
                                        device float* out [[buffer(1)]],
                                        uint tid [[thread_index_in_threadgroup]]) {
  if (tid >= args.n) {
    return;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[tid] = 1.0f;
}

// Even and odd threads meet at different barriers.
kernel void divergent_barrier(device float* out [[buffer(0)]],
                              uint tid [[thread_index_in_threadgroup]]) {
  if (tid % 2 == 0) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  } else {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  out[tid] = 1.0f;
}

// Half of simdgroup 0 waits at simd_sum while the other lanes wait at a barrier.
kernel void simd_sum_vs_barrier(device float* out [[buffer(0)]],
                                uint tid [[thread_index_in_threadgroup]],
                                uint tiisg [[thread_index_in_simdgroup]]) {
  float v = 1.0f;
  if (tiisg < 16) {
    v = simd_sum(v);
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[tid] = v;
}

// Lanes of one simdgroup call different collectives.
kernel void divergent_simd_ops(device float* out [[buffer(0)]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint tiisg [[thread_index_in_simdgroup]]) {
  float v = float(tid);
  if (tiisg % 2 == 0) {
    v = simd_sum(v);
  } else {
    v = simd_max(v);
  }
  out[tid] = v;
}

// simd_broadcast from a lane index that differs between lanes.
kernel void non_uniform_broadcast(device float* out [[buffer(0)]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint tiisg [[thread_index_in_simdgroup]]) {
  out[tid] = simd_broadcast(float(tid), ushort(tiisg % 2));
}

// simdgroup_load whose source differs between lanes.
kernel void non_uniform_simdgroup_load(device const float* x [[buffer(0)]],
                                       device float* out [[buffer(1)]],
                                       uint tiisg [[thread_index_in_simdgroup]]) {
  simdgroup_float8x8 m;
  simdgroup_load(m, x + (tiisg % 2) * 64, 8);
  simdgroup_store(m, out, 8);
}

// Reads one element past the end of the row when args.cols is odd (planted out-of-bounds
// read; the ASan build reports it with this file and line).
kernel void read_past_row(constant RowsArgs& args [[buffer(0)]],
                          device const float* x [[buffer(1)]],
                          device float* y [[buffer(2)]],
                          uint row [[threadgroup_position_in_grid]],
                          uint tid [[thread_position_in_threadgroup]]) {
  if (tid == 0) {
    float sum = 0.0f;
    for (uint i = 0; i <= args.cols; ++i) {
      sum += x[row * args.cols + i];
    }
    y[row] = sum;
  }
}

// A frame larger than the 64 KiB fiber stack (recursion, the other way to get there, is not
// MSL), written from its top down so that the first write past the stack is on the guard page.
kernel void stack_overflow(constant SimdArgs& args [[buffer(0)]],
                           device const float* x [[buffer(1)]],
                           device float* y [[buffer(2)]],
                           uint tid [[thread_index_in_threadgroup]]) {
  volatile float frame[32768];
  const uint n = min(uint(args.n), 32768u);
  for (uint i = 0; i < n; ++i) frame[32767 - i] = x[i % 4];
  y[tid] = frame[32768 - max(n, 1u)];
}

// A pipeline whose limit is below the GPU's 1024 threads per threadgroup.
[[max_total_threads_per_threadgroup(64)]]
kernel void limited_threads(device float* out [[buffer(0)]],
                            uint tid [[thread_index_in_threadgroup]]) {
  out[tid] = float(tid);
}
