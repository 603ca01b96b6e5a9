#include "torchless/tokenizer/utf8.h"

namespace torchless::utf8 {
namespace {

bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Expected sequence length from the lead byte and the allowed range of the second byte
// (Unicode Table 3-7, "well-formed UTF-8 byte sequences").
struct LeadInfo {
  size_t length;
  unsigned char second_lo;
  unsigned char second_hi;
};

LeadInfo lead_info(unsigned char c) {
  if (c < 0x80) return {1, 0, 0};
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes from `pos` that are consistent with a valid sequence (may be the whole
// sequence, or a proper prefix when the text ends early); 0 when text[pos] is no lead byte.
size_t consistent_length(std::string_view text, size_t pos, size_t* expected) {
  const LeadInfo info = lead_info(static_cast<unsigned char>(text[pos]));
  *expected = info.length;
  if (info.length <= 1) return info.length;
  size_t n = 1;
  while (n < info.length && pos + n < text.size()) {
    const auto c = static_cast<unsigned char>(text[pos + n]);
    const bool ok = n == 1 ? (c >= info.second_lo && c <= info.second_hi) : is_continuation(c);
    if (!ok) break;
    ++n;
  }
  return n;
}

}  // namespace

size_t valid_sequence_length(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  size_t expected = 0;
  const size_t n = consistent_length(text, pos, &expected);
  return n == expected ? n : 0;
}

char32_t decode_at(std::string_view text, size_t pos, size_t len) {
  const auto b = [&](size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(text[pos + i]));
  };
  switch (len) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    case 4:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    default:
      return kReplacement;
  }
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_valid(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = valid_sequence_length(text, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

std::string replace_invalid(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = valid_sequence_length(text, pos);
    if (n == 0) {
      append(out, kReplacement);
      ++pos;
    } else {
      out.append(text.substr(pos, n));
      pos += n;
    }
  }
  return out;
}

size_t complete_prefix_length(std::string_view text) {
  // An incomplete sequence is at most 3 bytes long, so only the tail needs a look.
  const size_t start = text.size() > 3 ? text.size() - 3 : 0;
  for (size_t pos = start; pos < text.size(); ++pos) {
    size_t expected = 0;
    const size_t n = consistent_length(text, pos, &expected);
    if (expected > 1 && n < expected && pos + n == text.size()) return pos;
  }
  return text.size();
}

}  // namespace torchless::utf8
