// y = W x for row-major W [rows, cols]: one simdgroup per row, float4 loads, simd_sum.
// cols must be a multiple of 4.
#include <metal_stdlib>
#include "emulator_test_args.h"
using namespace metal;

template <typename T4>
static inline void mat_vec_rows(constant RowsArgs& args, device const T4* w,
                                device const float4* x, device float* y, uint row,
                                uint tiisg, uint width) {
  if (row >= args.rows) {
    return;
  }
  const uint cols4 = args.cols / 4;
  device const T4* wr = w + row * cols4;
  float sum = 0.0f;
  for (uint i = tiisg; i < cols4; i += width) {
    sum += dot(float4(wr[i]), x[i]);
  }
  sum = simd_sum(sum);
  if (tiisg == 0) {
    y[row] = sum;
  }
}

kernel void mat_vec_f32(constant RowsArgs& args [[buffer(0)]],
                        device const float4* w [[buffer(1)]],
                        device const float4* x [[buffer(2)]],
                        device float* y [[buffer(3)]],
                        uint tgid [[threadgroup_position_in_grid]],
                        uint sgitg [[simdgroup_index_in_threadgroup]],
                        uint nsg [[simdgroups_per_threadgroup]],
                        uint tiisg [[thread_index_in_simdgroup]],
                        uint width [[threads_per_simdgroup]]) {
  mat_vec_rows(args, w, x, y, tgid * nsg + sgitg, tiisg, width);
}

kernel void mat_vec_f16(constant RowsArgs& args [[buffer(0)]],
                        device const half4* w [[buffer(1)]],
                        device const float4* x [[buffer(2)]],
                        device float* y [[buffer(3)]],
                        uint tgid [[threadgroup_position_in_grid]],
                        uint sgitg [[simdgroup_index_in_threadgroup]],
                        uint nsg [[simdgroups_per_threadgroup]],
                        uint tiisg [[thread_index_in_simdgroup]],
                        uint width [[threads_per_simdgroup]]) {
  mat_vec_rows(args, w, x, y, tgid * nsg + sgitg, tiisg, width);
}
