// Tokenizer metadata in a GGUF file is untrusted: missing keys, arrays whose lengths disagree,
// values of the wrong type and special ids outside the vocabulary give an Error naming the
// key (or are ignored where llama.cpp ignores them), never a crash or an out-of-range read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/formats/gguf_writer.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> spm_tokens() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b"};
  return tokens;
}

// A writer holding a valid SentencePiece-style vocabulary except for the keys in `skip`.
GgufWriter vocabulary(const std::vector<std::string>& skip = {}) {
  GgufWriter w;
  const auto add = [&](const std::string& key, GgufValue value) {
    if (std::find(skip.begin(), skip.end(), key) == skip.end()) w.add(key, std::move(value));
  };
  const auto tokens = spm_tokens();
  add("tokenizer.ggml.model", gguf_string("llama"));
  add("tokenizer.ggml.tokens", gguf_string_array(tokens));
  add("tokenizer.ggml.scores", gguf_f32_array(std::vector<float>(tokens.size(), -1.0f)));
  add("tokenizer.ggml.token_type", gguf_i32_array({2, 3, 3, 1, 1, 1, 1}));
  add("tokenizer.ggml.bos_token_id", gguf_u32(1));
  add("tokenizer.ggml.eos_token_id", gguf_u32(2));
  return w;
}

std::string load_error(const GgufWriter& w) {
  const std::vector<std::byte> bytes = w.to_bytes();
  const auto file = GgufFile::parse(bytes);
  try {
    (void)load_tokenizer_from_gguf(*file);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::unique_ptr<Tokenizer> load(const GgufWriter& w) {
  const std::vector<std::byte> bytes = w.to_bytes();
  return load_tokenizer_from_gguf(*GgufFile::parse(bytes));
}

TEST(GgufTokenizerHostile, TheValidVocabularyLoads) {
  const auto tok = load(vocabulary());
  EXPECT_EQ(tok->n_vocab(), 7);
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_EQ(tok->decode(tok->encode("a b")), "a b");
}

TEST(GgufTokenizerHostile, MissingKeysAreNamed) {
  EXPECT_THAT(load_error(vocabulary({"tokenizer.ggml.tokens"})),
              HasSubstr("tokenizer.ggml.tokens"));
  EXPECT_THAT(load_error(vocabulary({"tokenizer.ggml.model"})), HasSubstr("tokenizer.ggml.model"));
  GgufWriter gpt2 = vocabulary({"tokenizer.ggml.model"});
  gpt2.add("tokenizer.ggml.model", gguf_string("gpt2"));
  EXPECT_THAT(load_error(gpt2), HasSubstr("tokenizer.ggml.merges"));
  GgufWriter unknown = vocabulary({"tokenizer.ggml.model"});
  unknown.add("tokenizer.ggml.model", gguf_string("wordpiece"));
  EXPECT_THAT(load_error(unknown), HasSubstr("wordpiece"));
}

TEST(GgufTokenizerHostile, ArraysOfTheWrongLengthAreRefused) {
  GgufWriter scores = vocabulary({"tokenizer.ggml.scores"});
  scores.add("tokenizer.ggml.scores", gguf_f32_array({0.0f, 1.0f}));
  EXPECT_THAT(load_error(scores), HasSubstr("tokenizer.ggml.scores has 2 entries for 7 tokens"));
  GgufWriter types = vocabulary({"tokenizer.ggml.token_type"});
  types.add("tokenizer.ggml.token_type", gguf_i32_array({1, 1, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_THAT(load_error(types), HasSubstr("tokenizer.ggml.token_type has 9 entries"));
}

TEST(GgufTokenizerHostile, ValuesOfTheWrongTypeAreRefused) {
  GgufWriter tokens = vocabulary({"tokenizer.ggml.tokens"});
  tokens.add("tokenizer.ggml.tokens", gguf_f32_array({1.0f, 2.0f}));
  EXPECT_NE(load_error(tokens), "no error");
  GgufWriter model = vocabulary({"tokenizer.ggml.model"});
  model.add("tokenizer.ggml.model", gguf_u32(3));
  EXPECT_NE(load_error(model), "no error");
  GgufWriter bos = vocabulary({"tokenizer.ggml.bos_token_id"});
  bos.add("tokenizer.ggml.bos_token_id", gguf_string("1"));
  EXPECT_NE(load_error(bos), "no error");
}

// As llama.cpp: an id outside the vocabulary is ignored (the token is absent), not used.
TEST(GgufTokenizerHostile, SpecialIdsOutsideTheVocabularyAreIgnored) {
  GgufWriter w = vocabulary({"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"});
  w.add("tokenizer.ggml.bos_token_id", gguf_u32(7));
  w.add("tokenizer.ggml.eos_token_id", gguf_u32(4000000000u));
  w.add("tokenizer.ggml.eot_token_id", gguf_i32(-5));
  const auto tok = load(w);
  EXPECT_EQ(tok->bos(), -1);
  EXPECT_EQ(tok->eos(), -1);
  EXPECT_EQ(tok->eot(), -1);
  EXPECT_EQ(tok->decode(tok->encode("a")), "a");
}

TEST(GgufTokenizerHostile, OutOfRangeTokenTypesBecomeUndefined) {
  GgufWriter w = vocabulary({"tokenizer.ggml.token_type"});
  w.add("tokenizer.ggml.token_type", gguf_i32_array({2, 3, 3, 1, 99, -4, 1}));
  const auto tok = load(w);
  EXPECT_EQ(tok->token_type(4), TokenType::Undefined);
  EXPECT_EQ(tok->token_type(5), TokenType::Undefined);
}

}  // namespace
}  // namespace torchless
