#include "torchless/core/dtype.h"

#include <array>

#include "torchless/core/error.h"

namespace torchless {
namespace {

// Byte sizes follow ggml's block_* structs (ggml-common.h): e.g. Q4_0 is one f16 scale plus
// 32 nibbles = 18 bytes, Q4_K is 2 f16 + 12 scale bytes + 128 nibble bytes = 144.
constexpr std::array kTraits = {
    DTypeTraits{DType::F32, "f32", 1, 4, false},
    DTypeTraits{DType::F16, "f16", 1, 2, false},
    DTypeTraits{DType::Q4_0, "q4_0", 32, 18, true},
    DTypeTraits{DType::Q4_1, "q4_1", 32, 20, true},
    DTypeTraits{DType::Q5_0, "q5_0", 32, 22, true},
    DTypeTraits{DType::Q5_1, "q5_1", 32, 24, true},
    DTypeTraits{DType::Q8_0, "q8_0", 32, 34, true},
    DTypeTraits{DType::Q8_1, "q8_1", 32, 36, true},
    DTypeTraits{DType::Q2_K, "q2_K", 256, 84, true},
    DTypeTraits{DType::Q3_K, "q3_K", 256, 110, true},
    DTypeTraits{DType::Q4_K, "q4_K", 256, 144, true},
    DTypeTraits{DType::Q5_K, "q5_K", 256, 176, true},
    DTypeTraits{DType::Q6_K, "q6_K", 256, 210, true},
    DTypeTraits{DType::Q8_K, "q8_K", 256, 292, true},
    DTypeTraits{DType::IQ2_XXS, "iq2_xxs", 256, 66, true},
    DTypeTraits{DType::IQ2_XS, "iq2_xs", 256, 74, true},
    DTypeTraits{DType::IQ3_XXS, "iq3_xxs", 256, 98, true},
    DTypeTraits{DType::IQ1_S, "iq1_s", 256, 50, true},
    DTypeTraits{DType::IQ4_NL, "iq4_nl", 32, 18, true},
    DTypeTraits{DType::IQ3_S, "iq3_s", 256, 110, true},
    DTypeTraits{DType::IQ2_S, "iq2_s", 256, 82, true},
    DTypeTraits{DType::IQ4_XS, "iq4_xs", 256, 136, true},
    DTypeTraits{DType::I8, "i8", 1, 1, false},
    DTypeTraits{DType::I16, "i16", 1, 2, false},
    DTypeTraits{DType::I32, "i32", 1, 4, false},
    DTypeTraits{DType::I64, "i64", 1, 8, false},
    DTypeTraits{DType::F64, "f64", 1, 8, false},
    DTypeTraits{DType::IQ1_M, "iq1_m", 256, 56, true},
    DTypeTraits{DType::BF16, "bf16", 1, 2, false},
    DTypeTraits{DType::Q4_0_4_4, "q4_0_4_4", 32, 18, true},
    DTypeTraits{DType::Q4_0_4_8, "q4_0_4_8", 32, 18, true},
    DTypeTraits{DType::Q4_0_8_8, "q4_0_8_8", 32, 18, true},
    DTypeTraits{DType::TQ1_0, "tq1_0", 256, 54, true},
    DTypeTraits{DType::TQ2_0, "tq2_0", 256, 66, true},
    DTypeTraits{DType::IQ4_NL_4_4, "iq4_nl_4_4", 32, 18, true},
    DTypeTraits{DType::IQ4_NL_4_8, "iq4_nl_4_8", 32, 18, true},
    DTypeTraits{DType::IQ4_NL_8_8, "iq4_nl_8_8", 32, 18, true},
    DTypeTraits{DType::MXFP4, "mxfp4", 32, 17, true},
};

const DTypeTraits* find_traits(uint32_t id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.dtype) == id) return &t;
  }
  return nullptr;
}

}  // namespace

const DTypeTraits& dtype_traits(DType t) {
  const DTypeTraits* traits = find_traits(static_cast<uint32_t>(t));
  if (!traits) fail("unknown dtype id {}", static_cast<uint32_t>(t));
  return *traits;
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  const DTypeTraits* traits = find_traits(id);
  if (!traits) return std::nullopt;
  return traits->dtype;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& t : kTraits) {
    if (t.name.size() != name.size()) continue;
    bool equal = true;
    for (size_t i = 0; i < name.size(); ++i) {
      char a = t.name[i], b = name[i];
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
      if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
      equal = equal && a == b;
    }
    if (equal) return t.dtype;
  }
  return std::nullopt;
}

size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeTraits& traits = dtype_traits(t);
  if (n < 0 || n % traits.block_size != 0) {
    fail("a row of {} elements is not a whole number of {} blocks ({} elements each)", n,
         traits.name, traits.block_size);
  }
  return static_cast<size_t>(n / traits.block_size) * traits.block_bytes;
}

}  // namespace torchless
