#pragma once
// Reference (de)quantisers of the non-linear 4-bit types IQ4_NL (32-element blocks) and IQ4_XS
// (256-element super-blocks); used by quant.cpp's dispatch. `nb` counts blocks.
#include <cstdint>

#include "torchless/core/quant.h"

namespace torchless::quant_iq {

void dequantize_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t nb);
void dequantize_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t nb);

void quantize_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t nb);
void quantize_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t nb);

}  // namespace torchless::quant_iq
