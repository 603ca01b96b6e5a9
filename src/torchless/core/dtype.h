#pragma once
// Element types. The numeric values are GGUF's ggml_type ids, so a GGUF tensor type maps to a
// DType by value; the table in dtype.cpp is the only place block sizes and byte sizes live.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace torchless {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  // Row-interleaved Q4_0 / IQ4_NL for ARM (files of late 2024): the same 18-byte blocks, 4 or
  // 8 rows interleaved. llama.cpp has since dropped them for run-time repacking; torchless
  // recognises them (inspect, byte sizes) and asks for a re-quantised file to run them.
  Q4_0_4_4 = 31,
  Q4_0_4_8 = 32,
  Q4_0_8_8 = 33,
  TQ1_0 = 34,
  TQ2_0 = 35,
  IQ4_NL_4_4 = 36,
  IQ4_NL_4_8 = 37,
  IQ4_NL_8_8 = 38,
  MXFP4 = 39,
};

struct DTypeTraits {
  DType dtype;
  std::string_view name;  // as GGUF tools print it: "f32", "q4_0", "q4_K" ...
  int64_t block_size;     // elements per block (1 for plain types)
  size_t block_bytes;     // bytes per block
  bool quantized;
};

// Traits of a known dtype; throws Error for values that are not a DType.
const DTypeTraits& dtype_traits(DType t);
// Maps a raw ggml_type id, returning nullopt for ids torchless does not know.
std::optional<DType> dtype_from_ggml(uint32_t id);
std::optional<DType> dtype_from_name(std::string_view name);  // "f16", "q8_0", ...

inline std::string_view dtype_name(DType t) {
  return dtype_traits(t).name;
}
inline int64_t dtype_block_size(DType t) {
  return dtype_traits(t).block_size;
}
inline bool dtype_is_quantized(DType t) {
  return dtype_traits(t).quantized;
}

// Bytes of a row of `n` elements; throws Error when n is not a multiple of the block size.
size_t dtype_row_bytes(DType t, int64_t n);

}  // namespace torchless
