#pragma once
// GGUF v3 writer: metadata of every value type, tensors from host bytes, the layout llama.cpp
// expects (tensor data in the order added, each at an offset that is a multiple of the
// alignment, the data section padded to the alignment). Used by tests and tools.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "torchless/formats/gguf_file.h"

namespace torchless {

// Value factories, so that the GGUF type is always explicit.
GgufValue gguf_u8(uint8_t v);
GgufValue gguf_i8(int8_t v);
GgufValue gguf_u16(uint16_t v);
GgufValue gguf_i16(int16_t v);
GgufValue gguf_u32(uint32_t v);
GgufValue gguf_i32(int32_t v);
GgufValue gguf_u64(uint64_t v);
GgufValue gguf_i64(int64_t v);
GgufValue gguf_f32(float v);
GgufValue gguf_f64(double v);
GgufValue gguf_bool(bool v);
GgufValue gguf_string(std::string v);
// Every item must have type `element_type` (arrays of arrays are allowed).
GgufValue gguf_array(GgufType element_type, std::vector<GgufValue> items);
GgufValue gguf_string_array(const std::vector<std::string>& items);
GgufValue gguf_f32_array(const std::vector<float>& items);
GgufValue gguf_i32_array(const std::vector<int32_t>& items);

class GgufWriter {
 public:
  // Sets general.alignment (a power of two); 32, GGUF's default, is written as no key.
  void set_alignment(size_t alignment);
  size_t alignment() const { return alignment_; }

  // Throws Error on a duplicate key or a value whose content does not match its type.
  void add(std::string key, GgufValue value);
  // `data` holds the tensor in `dtype`'s layout, row-major `shape` (GGUF ne[] is its reverse);
  // it is copied. Throws Error on duplicate names or a size that does not match.
  void add_tensor(std::string name, DType dtype, const Shape& shape,
                  std::span<const std::byte> data);
  // Quantises (or converts) float values to `dtype` row by row with quantize_row().
  void add_tensor_from_f32(std::string name, DType dtype, const Shape& shape,
                           std::span<const float> values);

  std::vector<std::byte> to_bytes() const;
  void write_file(const std::filesystem::path& path) const;  // throws Error naming the path

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    Shape shape;
    std::vector<std::byte> data;
  };
  size_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace torchless
