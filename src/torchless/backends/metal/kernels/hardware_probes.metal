// Probes of three behaviours the MSL emulator assumes and only an Apple GPU can confirm
// (docs/metal.md, "Emulator assumptions"). `torchless metal-selftest` runs them first and
// compares what the GPU did with what the emulator does. No kernel of the backend depends on
// the shuffle's top lanes; the GEMM depends on the other two.
#include "metal_common.h"

// out[0..63]: the 8x8 tile that simdgroup_load reads from `in` (row_stride elements per row) at
// origin (origin_col, origin_row), stored back row-major. Origin read as (column, row): out[0]
// is in[origin_row * row_stride + origin_col].
kernel void probe_simdgroup_load_origin_kernel(constant ProbeArgs& args [[buffer(0)]],
                                               device const float* in [[buffer(1)]],
                                               device float* out [[buffer(2)]]) {
  simdgroup_float8x8 m;
  simdgroup_load(m, in, ulong(args.row_stride), ulong2(ulong(args.origin_col), ulong(args.origin_row)));
  simdgroup_store(m, out, 8);
}

// out[0..63]: simdgroup_float8x8(3) stored row-major; the emulator fills only the diagonal.
kernel void probe_simdgroup_matrix_diagonal_kernel(constant ProbeArgs& args [[buffer(0)]],
                                                   device float* out [[buffer(1)]]) {
  simdgroup_float8x8 m = simdgroup_float8x8(3.0f);
  simdgroup_store(m, out, 8);
}

// out[lane] = simd_shuffle_down(lane, delta) for every lane of one simdgroup; the emulator
// gives the top `delta` lanes their own value.
kernel void probe_shuffle_down_kernel(constant ProbeArgs& args [[buffer(0)]],
                                      device float* out [[buffer(1)]],
                                      uint lane [[thread_index_in_simdgroup]]) {
  out[lane] = simd_shuffle_down(float(lane), ushort(args.delta));
}
