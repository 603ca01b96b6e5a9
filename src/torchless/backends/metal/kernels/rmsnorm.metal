// RMSNorm: one threadgroup per row; threads stride over the row, then a threadgroup sum.
// y = x / sqrt(mean(x^2) + eps) * weight, computed in float; y may alias x because every
// element is read and written by the same thread, after the reduction.
#include "metal_common.h"

kernel void rmsnorm_kernel(constant RowArgs& args [[buffer(0)]],
                           device const float* x [[buffer(1)]],
                           device const float* weight [[buffer(2)]],
                           device float* y [[buffer(3)]],
                           threadgroup float* scratch [[threadgroup(0)]],
                           uint3 group [[threadgroup_position_in_grid]],
                           uint tid [[thread_index_in_threadgroup]],
                           uint3 group_size [[threads_per_threadgroup]],
                           uint lane [[thread_index_in_simdgroup]],
                           uint simdgroup [[simdgroup_index_in_threadgroup]],
                           uint n_simdgroups [[simdgroups_per_threadgroup]]) {
  const uint threads = group_size.x;
  const uint cols = uint(args.cols);
  device const float* xr = x + uint64_t(group.x) * cols;
  device float* yr = y + uint64_t(group.x) * cols;
  float squares = 0.0f;
  for (uint i = tid; i < cols; i += threads) squares += xr[i] * xr[i];
  const float total = threadgroup_sum(squares, scratch, lane, simdgroup, n_simdgroups);
  const float inv_rms = 1.0f / sqrt(total / float(cols) + args.eps);
  for (uint i = tid; i < cols; i += threads) yr[i] = xr[i] * inv_rms * weight[i];
}
