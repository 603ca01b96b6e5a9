#pragma once
// Integer dot products of block-quantised weights (every GGUF type but Q8_0/Q4_0, which
// cpu_matmul_kernels.cpp handles) with activations quantised to 8 bits, as llama.cpp's
// vec_dot_*_q8 functions do: per weight block, int16 codes (times their integer sub-block
// scales) are multiplied-added with int16 activation codes into int32 sums, and only the block
// sum is scaled in float. Offsets ("mins") of the asymmetric types are applied once per block
// through the sums of the activation codes.
//
// Activation layouts (cpu_quantize_act.cpp), one row of `cols` values each:
//   Q8  (legacy 32-element types): blocks of 32, one float scale each; the sum of the codes
//       of each block for Q4_1/Q5_1.
//   Q8_K (K types, IQ4_XS): blocks of 256, one float scale each, the sum of the codes of each
//       group of 16 for the types with mins (Q2_K, Q4_K, Q5_K) and for Q6_K (its offset of 32
//       in the VNNI kernel).
// Codes lie in [-127, 127] and are stored widened to int16 (see cpu_kernels.h), and again as
// int8 for the int8 kernels: cpu_quant_vnni-inl.h (Q4_K, Q5_K, Q6_K, Q8_0, Q4_0 on CPUs with
// AVX512-VNNI, Highway's AVX3_DL target) and cpu_quant_avx2_k-inl.h (with
// cpu_quant_avx2_kpack-inl.h for batches) / cpu_quant_avx2_legacy-inl.h (Q4_K, Q5_K, Q6_K, Q4_0
// on Highway's AVX2 target).
#include <cstdint>

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/core/dtype.h"

namespace torchless::cpu {

inline constexpr int kQ8KBlock = 256;

// Elements per activation scale for weights of `type`: 32 (Q8), 256 (Q8_K), or 0 when the
// weights take F32 activations.
int activation_block(DType type);
// Activation codes per stored sum, or 0 when `type` needs no sums.
int activation_sum_group(DType type);

// Whether the dispatched kernels are the VNNI ones (cpu_quant_vnni-inl.h), which also read
// weights repacked by cpu_repack.h.
bool has_vnni_kernels();

// Whether quant_matmul_tile has a kernel for `type`.
bool has_quant_dot(DType type);

// Quantises one row of `cols` activations for weights of `type` (activation_block(type) > 0):
// q gets cols codes, d cols / activation_block scales, sums cols / activation_sum_group sums
// (untouched when there are none).
void quantize_activation_row(DType type, const float* x, int64_t cols, int16_t* q, float* d,
                             int16_t* sums);

// q8[i] = q[i]: the codes (all in [-127, 127]) as int8, for the int8 kernels.
void narrow_codes(const int16_t* q, int64_t cols, int8_t* q8);

// matmul_tile (cpu_kernels.h) for the types of has_quant_dot; m.xq, m.xd and m.xsum hold the
// activations in the layout above, with row strides cols, cols / block and cols / group.
void quant_matmul_tile(const MatmulOperands& m, int64_t row0, int64_t row1, int64_t tok0,
                       int64_t tok1);

}  // namespace torchless::cpu
