#include "torchless/tokenizer/byte_unicode.h"

#include <array>

#include "torchless/tokenizer/utf8.h"

namespace torchless {
namespace {

struct ByteUnicodeTable {
  std::array<std::string, 256> encoded;
  std::array<char32_t, 256> code_point{};

  ByteUnicodeTable() {
    const auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      code_point[b] = printable(b) ? static_cast<char32_t>(b) : next++;
      encoded[b] = utf8::encode(code_point[b]);
    }
  }
};

const ByteUnicodeTable& table() {
  static const ByteUnicodeTable t;
  return t;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t byte) {
  return table().encoded[byte];
}

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
  if (cp < 256) {
    const bool printable =
        (cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF);
    if (printable) return static_cast<uint8_t>(cp);
    return std::nullopt;
  }
  // The 68 remapped bytes take U+0100..U+0143 in byte order.
  if (cp < 256 + 68) {
    const auto& t = table();
    for (int b = 0; b < 256; ++b) {
      if (t.code_point[b] == cp) return static_cast<uint8_t>(b);
    }
  }
  return std::nullopt;
}

std::string bytes_to_unicode_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_unicode(static_cast<uint8_t>(c));
  return out;
}

}  // namespace torchless
