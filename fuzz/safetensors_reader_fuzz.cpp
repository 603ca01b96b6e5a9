// libFuzzer target for the safetensors header parser and the Hugging Face config parser: any
// input must parse or throw torchless::Error, never crash or read outside the input (ASan +
// UBSan). The first input byte picks the parser, so one corpus covers both.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "torchless/core/error.h"
#include "torchless/formats/hf_config.h"
#include "torchless/formats/safetensors_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool config = data[0] & 1;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  try {
    if (config) {
      (void)torchless::parse_hf_config(
          std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      return 0;
    }
    const auto file = torchless::SafetensorsFile::parse(bytes);
    volatile unsigned sum = 0;
    for (const auto& t : file->tensors()) {
      // Touch both ends of every tensor: ASan reports any byte outside the input.
      if (t.nbytes == 0) continue;
      sum = sum + static_cast<unsigned>(t.data[0]) + static_cast<unsigned>(t.data[t.nbytes - 1]);
      try {
        (void)t.view();
      } catch (const torchless::Error&) {
      }
    }
  } catch (const torchless::Error&) {
  }
  return 0;
}
