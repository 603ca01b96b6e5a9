#pragma once
// GPT-2's reversible byte <-> unicode mapping used by byte-level BPE vocabularies: printable
// bytes map to themselves, the others (controls, space, 0x7F-0xA0, 0xAD) to U+0100 upwards, so
// every byte string becomes a printable string ("Ġ" = space, "Ċ" = newline).
// Reference: openai/gpt-2 encoder.py, bytes_to_unicode().
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace torchless {

// UTF-8 encoding of the code point that stands for `byte`.
const std::string& byte_to_unicode(uint8_t byte);
// The byte a code point stands for, or nullopt when it is not part of the mapping.
std::optional<uint8_t> unicode_to_byte(char32_t cp);

// Maps every byte of `bytes` (raw text) to its stand-in: the form merges and vocab use.
std::string bytes_to_unicode_text(std::string_view bytes);

}  // namespace torchless
