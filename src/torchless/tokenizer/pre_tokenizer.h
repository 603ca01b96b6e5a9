#pragma once
// The regex pre-tokenizer of byte-level BPE: splits text into the words that BPE merges
// within. Regexes are applied in order, each to every piece the previous ones left, and a
// piece's unmatched stretches stay pieces too (HF "Split" with behaviour "Isolated", as
// llama.cpp's unicode_regex_split). Unicode classes (\p{L}, \p{N}, \s) come from PCRE2 with
// UTF + UCP, compiled with its JIT.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace torchless {

class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string>& patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // `text` must be valid UTF-8 (see utf8::replace_invalid). Returns views into `text`.
  std::vector<std::string_view> split(std::string_view text) const;

  struct Compiled;  // one PCRE2 program (defined in the .cpp)

 private:
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace torchless
