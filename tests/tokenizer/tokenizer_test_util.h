#pragma once
// Shared helpers of the tokenizer tests: paths into ../shared and file reading.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless::test {

inline std::filesystem::path shared_path(const std::string& relative) {
  return std::filesystem::path(TORCHLESS_SOURCE_DIR) / ".." / "shared" / relative;
}

// Reads a whole file as bytes; an empty optional-like result is reported by the caller.
inline bool read_file(const std::filesystem::path& path, std::string& out) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  out.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return true;
}

inline std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& relative) {
  const auto path = shared_path(relative);
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "missing test data " << path << " (the ../shared folder is required)";
    return nullptr;
  }
  return load_tokenizer_from_gguf(*GgufFile::open(path));
}

// "a\nb" -> "a\\nb", bytes >= 0x80 as \xNN: readable failure messages.
inline std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// EncodeOptions without designated initializers (g++ 12 -Wextra warns about omitted members).
inline EncodeOptions encode_options(std::optional<bool> add_bos,
                                    std::optional<bool> add_eos = std::nullopt,
                                    bool parse_special = false) {
  EncodeOptions o;
  o.add_bos = add_bos;
  o.add_eos = add_eos;
  o.parse_special = parse_special;
  return o;
}

// The vocabularies every generic property is checked on: both SentencePiece files and the
// byte-level BPE ones with their different pre-tokenizers.
inline const std::vector<std::string>& all_gguf_vocabs() {
  static const std::vector<std::string> names = {
      "models/stories260K.gguf", "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf",
      "vocab/ggml-vocab-starcoder.gguf", "vocab/ggml-vocab-deepseek-coder.gguf"};
  return names;
}

inline void append_utf8(std::string& out, char32_t cp) {
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

// Random valid UTF-8 of `n_chars` characters drawn from pools that stress pre-tokenizers:
// ASCII words and digits, runs of whitespace, punctuation, accented Latin, Greek, Cyrillic,
// Arabic, CJK, Hangul, combining marks, unusual spaces, emoji and arbitrary code points.
inline std::string random_utf8(std::mt19937& rng, int n_chars) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {'a', 'z'},     {'A', 'Z'},       {'0', '9'},         {' ', ' '},       {' ', ' '},
      {'\n', '\n'},   {'\t', '\t'},     {'!', '/'},         {':', '@'},       {'[', '`'},
      {'{', '~'},     {0xC0, 0xFF},     {0x391, 0x3C9},     {0x410, 0x44F},   {0x621, 0x64A},
      {0x660, 0x669}, {0x300, 0x36F},   {0x4E00, 0x9FA5},   {0xAC00, 0xD7A3}, {0x3000, 0x3002},
      {0xA0, 0xA0},   {0x2000, 0x200B}, {0x1F600, 0x1F64F}, {0x80, 0x10FFFF}, {'\r', '\r'},
      {'\'', '\''}};
  std::uniform_int_distribution<size_t> pick(0, ranges.size() - 1);
  std::string out;
  for (int i = 0; i < n_chars; ++i) {
    const auto [lo, hi] = ranges[pick(rng)];
    char32_t cp = std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE000;  // surrogates are not characters
    append_utf8(out, cp);
  }
  return out;
}

}  // namespace torchless::test
