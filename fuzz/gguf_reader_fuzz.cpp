// libFuzzer target for the GGUF reader: any input must parse or throw torchless::Error, never
// crash, leak or read outside the input (ASan + UBSan). Parsed files are then walked the way
// the loaders and `inspect` walk them, each tensor's first row is dequantised, and the
// tokenizer metadata (token, score, type and merge arrays, special ids) goes through the
// tokenizer loader, whose result encodes and decodes a short text.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "torchless/core/error.h"
#include "torchless/core/quant.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/tokenizer/tokenizer.h"

namespace {

void touch(const torchless::GgufValue& value) {
  using torchless::GgufType;
  try {
    switch (value.type) {
      case GgufType::String:
        (void)value.as_string().size();
        break;
      case GgufType::Array:
        for (const auto& item : value.as_array().items) touch(item);
        break;
      case GgufType::Bool:
        (void)value.as_bool();
        break;
      default:
        (void)value.as_f64();
        (void)value.as_i64();
        break;
    }
  } catch (const torchless::Error&) {
    // e.g. a u64 above INT64_MAX: the accessor's refusal is the expected outcome.
  }
}

void dequantize_first_row(const torchless::GgufTensorInfo& t) {
  const int64_t cols = t.shape.cols();
  if (!torchless::can_dequantize(t.dtype) || cols <= 0 || t.nbytes == 0 || cols > (1 << 20)) return;
  std::vector<float> row(static_cast<size_t>(cols));
  torchless::dequantize_row(t.dtype, t.data, row.data(), cols);
}

void tokenize_with_its_vocabulary(const torchless::GgufFile& file) {
  try {
    const auto tokenizer = torchless::load_tokenizer_from_gguf(file);
    torchless::EncodeOptions options;
    options.parse_special = true;
    const auto ids = tokenizer->encode("Hi <s> caf\xc3\xa9 \xff 12", options);
    (void)tokenizer->decode(ids);
  } catch (const torchless::Error&) {
    // Missing or inconsistent tokenizer metadata: refused with a message.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A private copy of exactly `size` bytes, so that any overread lands in ASan's redzone.
  const std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                                     reinterpret_cast<const std::byte*>(data) + size);
  try {
    const auto file = torchless::GgufFile::parse(bytes);
    for (const auto& [key, value] : file->metadata()) touch(value);
    for (const auto& tensor : file->tensors()) dequantize_first_row(tensor);
    tokenize_with_its_vocabulary(*file);
    (void)file->get_string("general.architecture", "");
  } catch (const torchless::Error&) {
    // Rejected input: the expected outcome for most mutations.
  }
  return 0;
}
