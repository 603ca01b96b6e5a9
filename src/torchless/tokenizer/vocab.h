#pragma once
// The data every tokenizer is built from, whatever file it came from: tokens with scores and
// types, BPE merges, special ids and flags. Loaders fill a Vocab; make_tokenizer() checks it,
// completes what the file left implicit (EOT/EOG tokens found by text, as llama.cpp does) and
// builds the tokenizer for its model type.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

struct VocabToken {
  std::string text;
  float score = 0.0f;
  TokenType type = TokenType::Normal;
  bool lstrip = false;  // HF added token: whitespace to its left is swallowed
  bool rstrip = false;  // ... and to its right
};

struct Vocab {
  std::string model_type;  // "llama" (SentencePiece-style) or "gpt2" (byte-level BPE)
  std::string pre_type;    // tokenizer.ggml.pre; "default" when absent
  std::vector<VocabToken> tokens;
  // gpt2: merges in rank order, each as the two halves. llama: unused (scores decide).
  std::vector<std::pair<std::string, std::string>> merges;
  // gpt2: the pre-tokenizer's split regexes, applied in order; empty = derive from pre_type.
  std::vector<std::string> split_regexes;
  bool explicit_split_regexes = false;  // true: split_regexes is authoritative even when empty

  int32_t bos = -1;
  int32_t eos = -1;
  int32_t eot = -1;
  int32_t eom = -1;
  int32_t unk = -1;
  int32_t pad = -1;
  // Tokens that end generation besides EOS/EOT/EOM (e.g. HF generation_config eos lists);
  // make_tokenizer() adds the ones it recognises by text.
  std::vector<int32_t> eog;

  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // llama: prepend U+2581 to the first text fragment
  bool ignore_merges = false;     // gpt2: a whole pre-token found in the vocab is taken as is
  std::optional<std::string> chat_template;
  std::string source;  // file the vocabulary came from, for error messages
};

// Defaults of a model type / pre-tokenizer (add_bos, ignore_merges, ...), applied by loaders
// before the file's own keys override them.
void apply_model_defaults(Vocab& vocab);

// The split regexes llama.cpp uses for a tokenizer.ggml.pre value; throws Error for unknown ones.
std::vector<std::string> split_regexes_for_pre_type(const std::string& pre_type);

std::unique_ptr<Tokenizer> make_tokenizer(Vocab vocab);

}  // namespace torchless
