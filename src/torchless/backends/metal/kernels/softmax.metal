// Numerically stable softmax in place, one threadgroup per row: max, then sum of exp(x - max),
// then normalise. Kept in float throughout (half overflows on long rows).
#include "metal_common.h"

kernel void softmax_kernel(constant RowArgs& args [[buffer(0)]],
                           device float* x [[buffer(1)]],
                           threadgroup float* scratch [[threadgroup(0)]],
                           uint3 group [[threadgroup_position_in_grid]],
                           uint tid [[thread_index_in_threadgroup]],
                           uint3 group_size [[threads_per_threadgroup]],
                           uint lane [[thread_index_in_simdgroup]],
                           uint simdgroup [[simdgroup_index_in_threadgroup]],
                           uint n_simdgroups [[simdgroups_per_threadgroup]]) {
  const uint threads = group_size.x;
  const uint cols = uint(args.cols);
  device float* row = x + uint64_t(group.x) * cols;
  float local_max = -INFINITY;
  for (uint i = tid; i < cols; i += threads) local_max = max(local_max, row[i]);
  const float row_max = threadgroup_max(local_max, scratch, lane, simdgroup, n_simdgroups);
  float local_sum = 0.0f;
  for (uint i = tid; i < cols; i += threads) local_sum += exp(row[i] - row_max);
  const float inv_sum = 1.0f / threadgroup_sum(local_sum, scratch, lane, simdgroup, n_simdgroups);
  for (uint i = tid; i < cols; i += threads) row[i] = exp(row[i] - row_max) * inv_sum;
}
