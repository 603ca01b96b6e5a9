#include "torchless/tokenizer/vocab.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "torchless/core/error.h"

namespace torchless {

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab);
std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab);

namespace {

// Conversion scripts do not always store EOT/EOM/FIM ids, so llama.cpp recognises them by text
// (and forces them to Control, so they are never produced from plain text). We do the same so
// that both engines tokenize and stop identically.
constexpr std::array<std::string_view, 7> kEotTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};  // DeepSeek
constexpr std::array<std::string_view, 7> kEogTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"};
constexpr std::array<std::string_view, 4> kFimPrefixTexts = {"<|fim_prefix|>", "<fim-prefix>",
                                                             "<\xEF\xBD\x9C"
                                                             "fim\xE2\x96\x81"
                                                             "begin\xEF\xBD\x9C>",
                                                             "<PRE>"};
constexpr std::array<std::string_view, 4> kFimSuffixTexts = {"<|fim_suffix|>", "<fim-suffix>",
                                                             "<\xEF\xBD\x9C"
                                                             "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
                                                             "<SUF>"};
constexpr std::array<std::string_view, 4> kFimMiddleTexts = {"<|fim_middle|>", "<fim-middle>",
                                                             "<\xEF\xBD\x9C"
                                                             "fim\xE2\x96\x81"
                                                             "end\xEF\xBD\x9C>",
                                                             "<MID>"};
// FIM pad, repo and file-separator tokens also end generation.
constexpr std::array<std::string_view, 8> kFimEogTexts = {
    "<|fim_pad|>",   "<fim-pad>",  "<PAD>",  "<|fim_repo|>",
    "<|repo_name|>", "<fim-repo>", "<REPO>", "<|file_sep|>"};

template <size_t N>
bool in(const std::array<std::string_view, N>& list, std::string_view text) {
  return std::find(list.begin(), list.end(), text) != list.end();
}

// The first token whose text is in `list` (lowest id), or -1.
template <size_t N>
int32_t find_by_text(const Vocab& vocab, const std::array<std::string_view, N>& list) {
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    if (in(list, vocab.tokens[i].text)) return static_cast<int32_t>(i);
  }
  return -1;
}

void make_control(Vocab& vocab, int32_t id) {
  if (id >= 0) vocab.tokens[id].type = TokenType::Control;
}

void check_special_ids(Vocab& vocab) {
  const auto n = static_cast<int32_t>(vocab.tokens.size());
  for (int32_t* id : {&vocab.bos, &vocab.eos, &vocab.eot, &vocab.eom, &vocab.unk, &vocab.pad}) {
    if (*id >= n || *id < -1) *id = -1;  // as llama.cpp: a bad id is ignored, not fatal
  }
  std::erase_if(vocab.eog, [n](int32_t id) { return id < 0 || id >= n; });
}

void detect_special_tokens(Vocab& vocab) {
  if (vocab.eot < 0) vocab.eot = find_by_text(vocab, kEotTexts);
  make_control(vocab, vocab.eot);
  if (vocab.eom < 0) vocab.eom = find_by_text(vocab, std::array<std::string_view, 1>{"<|eom_id|>"});
  make_control(vocab, vocab.eom);
  make_control(vocab, find_by_text(vocab, kFimPrefixTexts));
  make_control(vocab, find_by_text(vocab, kFimSuffixTexts));
  make_control(vocab, find_by_text(vocab, kFimMiddleTexts));
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (in(kEogTexts, vocab.tokens[i].text) || in(kFimEogTexts, vocab.tokens[i].text)) {
      make_control(vocab, id);
      vocab.eog.push_back(id);
    }
  }
  for (int32_t id : {vocab.eos, vocab.eot, vocab.eom}) {
    if (id >= 0) vocab.eog.push_back(id);
  }
}

}  // namespace

void apply_model_defaults(Vocab& vocab) {
  if (vocab.model_type == "llama") {
    vocab.bos = 1;
    vocab.eos = 2;
    vocab.unk = 0;
    vocab.add_bos = true;
    vocab.add_eos = false;
    vocab.add_space_prefix = true;
    return;
  }
  if (vocab.model_type != "gpt2") return;
  vocab.add_bos = false;
  vocab.add_eos = false;
  vocab.add_space_prefix = false;
  const std::string& pre = vocab.pre_type;
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" ||
      pre == "tekken") {
    vocab.ignore_merges = true;
    vocab.add_bos = true;
  } else if (pre == "chameleon") {
    vocab.add_bos = true;
  } else if (pre == "chatglm-bpe") {
    vocab.bos = -1;
  }
}

std::unique_ptr<Tokenizer> make_tokenizer(Vocab vocab) {
  if (vocab.tokens.empty()) fail("{}: the vocabulary has no tokens", vocab.source);
  if (vocab.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    fail("{}: vocabulary of {} tokens is too large", vocab.source, vocab.tokens.size());
  }
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    // An empty entry could never be matched and would break special-token splitting.
    if (vocab.tokens[i].text.empty()) vocab.tokens[i].text = "[EMPTY_" + std::to_string(i) + "]";
  }
  if (vocab.pre_type.empty()) vocab.pre_type = "default";
  check_special_ids(vocab);
  detect_special_tokens(vocab);
  std::sort(vocab.eog.begin(), vocab.eog.end());
  vocab.eog.erase(std::unique(vocab.eog.begin(), vocab.eog.end()), vocab.eog.end());
  const std::string source = vocab.source;
  try {
    if (vocab.model_type == "llama") return make_spm_tokenizer(std::move(vocab));
    if (vocab.model_type == "gpt2") return make_bpe_tokenizer(std::move(vocab));
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  fail("{}: unsupported tokenizer model '{}' (supported: llama, gpt2)", vocab.source,
       vocab.model_type);
}

}  // namespace torchless
