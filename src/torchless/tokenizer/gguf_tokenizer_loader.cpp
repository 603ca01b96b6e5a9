// Vocabulary from GGUF metadata (tokenizer.ggml.*), with llama.cpp's defaults for absent keys.
#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/tokenizer/vocab.h"

namespace torchless {
namespace {

TokenType token_type_from(int64_t value) {
  if (value < 0 || value > static_cast<int64_t>(TokenType::Byte)) return TokenType::Undefined;
  return static_cast<TokenType>(value);
}

void read_tokens(const GgufFile& gguf, Vocab& vocab) {
  const GgufValue* tokens = gguf.find("tokenizer.ggml.tokens");
  if (!tokens) fail("the file has no tokenizer (tokenizer.ggml.tokens is missing)");
  const std::vector<std::string> texts = tokens->as_string_list();
  vocab.tokens.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) vocab.tokens[i].text = texts[i];

  if (const GgufValue* scores = gguf.find("tokenizer.ggml.scores")) {
    const std::vector<float> values = scores->as_f32_list();
    if (values.size() != texts.size()) {
      fail("tokenizer.ggml.scores has {} entries for {} tokens", values.size(), texts.size());
    }
    for (size_t i = 0; i < values.size(); ++i) vocab.tokens[i].score = values[i];
  }
  if (const GgufValue* types = gguf.find("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> values = types->as_i64_list();
    if (values.size() != texts.size()) {
      fail("tokenizer.ggml.token_type has {} entries for {} tokens", values.size(), texts.size());
    }
    for (size_t i = 0; i < values.size(); ++i) vocab.tokens[i].type = token_type_from(values[i]);
  }
}

void read_merges(const GgufFile& gguf, Vocab& vocab) {
  const GgufValue* merges = gguf.find("tokenizer.ggml.merges");
  if (!merges) fail("tokenizer.ggml.merges is missing (required for a gpt2 tokenizer)");
  for (const std::string& line : merges->as_string_list()) {
    // The separator is the first space after the first character ("Ġ t" -> "Ġ", "t").
    const size_t pos = line.find(' ', 1);
    if (pos == std::string::npos) continue;  // malformed line: skipped, as llama.cpp does
    vocab.merges.emplace_back(line.substr(0, pos), line.substr(pos + 1));
  }
}

void read_special(const GgufFile& gguf, std::string_view key, int32_t& id) {
  if (const GgufValue* value = gguf.find(key)) {
    const int64_t v = value->as_i64();
    id = v >= 0 && v < static_cast<int64_t>(INT32_MAX) ? static_cast<int32_t>(v) : -1;
  }
}

void read_flag(const GgufFile& gguf, std::string_view key, bool& flag) {
  if (const GgufValue* value = gguf.find(key)) flag = value->as_bool();
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_from_gguf(const GgufFile& gguf) {
  Vocab vocab;
  vocab.source = "GGUF tokenizer";
  if (gguf.mapping()) vocab.source = gguf.mapping()->path().string();
  try {
    vocab.model_type = gguf.get_string("tokenizer.ggml.model", "");
    if (vocab.model_type.empty()) fail("tokenizer.ggml.model is missing");
    vocab.pre_type = gguf.get_string("tokenizer.ggml.pre", "default");
    apply_model_defaults(vocab);
    read_tokens(gguf, vocab);
    if (vocab.model_type == "gpt2") read_merges(gguf, vocab);
    read_special(gguf, "tokenizer.ggml.bos_token_id", vocab.bos);
    read_special(gguf, "tokenizer.ggml.eos_token_id", vocab.eos);
    read_special(gguf, "tokenizer.ggml.eot_token_id", vocab.eot);
    read_special(gguf, "tokenizer.ggml.eom_token_id", vocab.eom);
    read_special(gguf, "tokenizer.ggml.unknown_token_id", vocab.unk);
    read_special(gguf, "tokenizer.ggml.padding_token_id", vocab.pad);
    read_flag(gguf, "tokenizer.ggml.add_bos_token", vocab.add_bos);
    read_flag(gguf, "tokenizer.ggml.add_eos_token", vocab.add_eos);
    read_flag(gguf, "tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);
    if (const GgufValue* tmpl = gguf.find("tokenizer.chat_template")) {
      vocab.chat_template = tmpl->as_string();
    }
  } catch (const Error& e) {
    fail("{}: {}", vocab.source, e.what());
  }
  return make_tokenizer(std::move(vocab));
}

}  // namespace torchless
