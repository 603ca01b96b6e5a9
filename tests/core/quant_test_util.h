#pragma once
// Helpers of the quantisation tests (quant_test.cpp, quant_iq4_test.cpp): the code under test
// applied to one hand-built block or to a whole row.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "torchless/core/dtype.h"
#include "torchless/core/quant.h"

namespace torchless::quant_test {

// The values of one block of `type`, dequantised by dequantize_row.
template <typename Block>
std::vector<float> dequantize_block(DType type, const Block& block) {
  std::vector<float> y(static_cast<size_t>(dtype_block_size(type)));
  dequantize_row(type, reinterpret_cast<const std::byte*>(&block), y.data(),
                 dtype_block_size(type));
  return y;
}

// x quantised to `type` and back.
inline std::vector<float> round_trip(DType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<std::byte> q(dtype_row_bytes(type, n));
  quantize_row(type, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  dequantize_row(type, q.data(), y.data(), n);
  return y;
}

}  // namespace torchless::quant_test
