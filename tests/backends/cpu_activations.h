#pragma once
// The activations the CPU backend multiplies weights with, as cpu_backend.h documents: unchanged
// for float weights; for quantised weights, quantised per block of 32 to steps of amax / 127
// with round to nearest even. Tests compare the CPU's matmul against the float64 reference over
// these, at float accuracy, so a wrong scale, rounding or nibble order cannot hide inside the
// conformance suite's worst-case bound for 8-bit activations.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "torchless/core/dtype.h"

namespace torchless {

inline std::vector<float> cpu_effective_activations(const std::vector<float>& x, DType wtype) {
  if (!dtype_is_quantized(wtype)) return x;
  std::vector<float> xq(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    for (size_t i = b; i < b + 32; ++i) xq[i] = std::nearbyint(x[i] * id) * d;
  }
  return xq;
}

}  // namespace torchless
