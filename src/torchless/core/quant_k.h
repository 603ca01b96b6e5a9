#pragma once
// Reference (de)quantisers of the K types (256-element super-blocks), one pair per type; used by
// quant.cpp's dispatch. `nb` counts blocks.
#include <cstdint>

#include "torchless/core/quant.h"

namespace torchless::quant_k {

void dequantize_q2_k(const BlockQ2_K* x, float* y, int64_t nb);
void dequantize_q3_k(const BlockQ3_K* x, float* y, int64_t nb);
void dequantize_q4_k(const BlockQ4_K* x, float* y, int64_t nb);
void dequantize_q5_k(const BlockQ5_K* x, float* y, int64_t nb);
void dequantize_q6_k(const BlockQ6_K* x, float* y, int64_t nb);
void dequantize_q8_k(const BlockQ8_K* x, float* y, int64_t nb);

void quantize_q2_k(const float* x, BlockQ2_K* y, int64_t nb);
void quantize_q3_k(const float* x, BlockQ3_K* y, int64_t nb);
void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t nb);
void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t nb);
void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t nb);
void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb);

// The element of largest magnitude, with its sign: symmetric types map it to the most negative
// code (e.g. -8 for 4 bits), which uses the full asymmetric range of the code. Shared by the
// quantisers of quant.cpp and quant_k.cpp.
float signed_absmax(const float* x, int n);

}  // namespace torchless::quant_k
