#pragma once
// The weight types the Metal kernels read, in one list: the backend's supports_weight_dtype,
// the kernel names of the weight ops and the self-test all come from it. BF16 also needs the
// device's bfloat support (MetalDeviceInfo::supports_bf16).
#include <algorithm>
#include <iterator>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "torchless/core/dtype.h"
#include "torchless/core/error.h"

namespace torchless::metal {

inline constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,    DType::BF16,  DType::Q8_0,
                                         DType::Q4_0, DType::Q4_1,   DType::Q5_0,  DType::Q5_1,
                                         DType::Q2_K, DType::Q3_K,   DType::Q4_K,  DType::Q5_K,
                                         DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};

inline bool is_weight_type(DType dtype) {
  return std::find(std::begin(kWeightTypes), std::end(kWeightTypes), dtype) !=
         std::end(kWeightTypes);
}

// The kernel of op `base` for weights of `dtype`: "<base>_kernel" for F32, else the type as
// GGUF spells it: "matmul_q5_K_kernel", "embedding_iq4_xs_kernel". Throws Error for a type
// outside kWeightTypes.
inline std::string weight_kernel(std::string_view base, DType dtype) {
  if (!is_weight_type(dtype)) {
    fail("{}: weights of type {} are not supported by the Metal backend", base, dtype_name(dtype));
  }
  if (dtype == DType::F32) return fmt::format("{}_kernel", base);
  return fmt::format("{}_{}_kernel", base, dtype_name(dtype));
}

}  // namespace torchless::metal
