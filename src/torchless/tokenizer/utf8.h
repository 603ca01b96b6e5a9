#pragma once
// UTF-8 helpers for the tokenizers: strict decoding (no overlong forms, no surrogates, nothing
// above U+10FFFF), so that "valid" means the same everywhere in torchless.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace torchless::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// Length in bytes of the valid UTF-8 sequence starting at text[pos], or 0 when the bytes there
// are not one (invalid lead byte, bad continuation, overlong, surrogate, truncated).
size_t valid_sequence_length(std::string_view text, size_t pos);

// Decodes the sequence at text[pos] (which valid_sequence_length says is `len` bytes long).
char32_t decode_at(std::string_view text, size_t pos, size_t len);

void append(std::string& out, char32_t cp);
inline std::string encode(char32_t cp) {
  std::string s;
  append(s, cp);
  return s;
}

bool is_valid(std::string_view text);

// Every byte that does not belong to a valid sequence becomes U+FFFD (one per byte).
std::string replace_invalid(std::string_view text);

// How many leading bytes of `text` can be emitted now without splitting a character: the
// length minus an incomplete (but so far valid) sequence at the very end.
size_t complete_prefix_length(std::string_view text);

}  // namespace torchless::utf8
