// RMSNorm, llama.cpp style: each thread sums squares over a strided slice of the row,
// simd_sum reduces a simdgroup, simdgroup partials meet in threadgroup memory.
#include <metal_stdlib>
#include "emulator_test_args.h"
using namespace metal;

static inline float rms_scale(constant RowsArgs& args, device const float* x,
                              threadgroup float* partials, uint tid, uint ntg, uint sgitg,
                              uint tiisg, bool with_barrier) {
  if (sgitg == 0) {
    partials[tiisg] = 0.0f;
  }
  if (with_barrier) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  float sum = 0.0f;
  for (uint i = tid; i < args.cols; i += ntg) {
    sum += x[i] * x[i];
  }
  sum = simd_sum(sum);
  if (tiisg == 0) {
    partials[sgitg] = sum;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  sum = simd_sum(partials[tiisg]);
  return rsqrt(sum / float(args.cols) + args.eps);
}

kernel void rms_norm_f32(constant RowsArgs& args [[buffer(0)]],
                         device const float* x [[buffer(1)]],
                         device const float* weight [[buffer(2)]],
                         device float* y [[buffer(3)]],
                         threadgroup float* partials [[threadgroup(0)]],
                         uint row [[threadgroup_position_in_grid]],
                         uint tid [[thread_position_in_threadgroup]],
                         uint ntg [[threads_per_threadgroup]],
                         uint sgitg [[simdgroup_index_in_threadgroup]],
                         uint tiisg [[thread_index_in_simdgroup]]) {
  device const float* xr = x + row * args.cols;
  const float scale = rms_scale(args, xr, partials, tid, ntg, sgitg, tiisg, true);
  for (uint i = tid; i < args.cols; i += ntg) {
    y[row * args.cols + i] = xr[i] * scale * weight[i];
  }
}

// The same with the barrier after zero-filling the partials removed: a planted race that
// forward order hides and reverse/shuffled orders expose.
kernel void rms_norm_f32_racy(constant RowsArgs& args [[buffer(0)]],
                              device const float* x [[buffer(1)]],
                              device const float* weight [[buffer(2)]],
                              device float* y [[buffer(3)]],
                              threadgroup float* partials [[threadgroup(0)]],
                              uint row [[threadgroup_position_in_grid]],
                              uint tid [[thread_position_in_threadgroup]],
                              uint ntg [[threads_per_threadgroup]],
                              uint sgitg [[simdgroup_index_in_threadgroup]],
                              uint tiisg [[thread_index_in_simdgroup]]) {
  device const float* xr = x + row * args.cols;
  const float scale = rms_scale(args, xr, partials, tid, ntg, sgitg, tiisg, false);
  for (uint i = tid; i < args.cols; i += ntg) {
    y[row * args.cols + i] = xr[i] * scale * weight[i];
  }
}
