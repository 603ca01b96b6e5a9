// Special tokens on the byte-level vocabularies, and the SentencePiece speed-up (cutting the
// text at word starts) giving the same ids as one merge over the whole text.
#include "tokenizer/tokenizer_test_util.h"
#include "torchless/tokenizer/vocab.h"

namespace torchless {
namespace {

TEST(SpecialTokens, Gpt2EndOfTextIsTextUnlessParsed) {
  auto t = test::load_gguf_tokenizer("vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->eos(), 50256);
  EXPECT_EQ(t->eot(), 50256);
  EXPECT_FALSE(t->add_bos());
  EXPECT_EQ(t->pre_type(), "gpt-2");
  EXPECT_TRUE(t->is_end_of_generation(50256));
  EXPECT_FALSE(t->is_end_of_generation(0));
  const std::string text = "a<|endoftext|>b";
  const auto plain = t->encode(text);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(t->decode(plain), text);
  const auto parsed = t->encode(text, test::encode_options(std::nullopt, std::nullopt, true));
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[1], 50256);
  EXPECT_EQ(t->decode(parsed), "ab");  // control tokens decode to nothing
  EXPECT_EQ(t->token_to_piece(50256, true), "<|endoftext|>");
}

TEST(SpecialTokens, DeepseekCoderAddsBosByItsFlag) {
  auto t = test::load_gguf_tokenizer("vocab/ggml-vocab-deepseek-coder.gguf");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->encode("x").front(), 32013);
  EXPECT_EQ(t->encode("x", test::encode_options(false)).front(),
            t->encode("x", test::encode_options(false)).front());
  EXPECT_NE(t->encode("x", test::encode_options(false)).front(), 32013);
  // The DeepSeek end-of-sentence token is recognised by its text as EOT.
  EXPECT_EQ(t->token_text(t->eot()),
            "<\xEF\xBD\x9C"
            "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>");
}

Vocab llama_spm_vocab() {
  const auto gguf = GgufFile::open(test::shared_path("vocab/ggml-vocab-llama-spm.gguf"));
  Vocab v;
  v.model_type = "llama";
  apply_model_defaults(v);
  const auto texts = gguf->get("tokenizer.ggml.tokens").as_string_list();
  const auto scores = gguf->get("tokenizer.ggml.scores").as_f32_list();
  const auto types = gguf->get("tokenizer.ggml.token_type").as_i64_list();
  for (size_t i = 0; i < texts.size(); ++i) {
    v.tokens.push_back({texts[i], scores[i], static_cast<TokenType>(types[i]), false, false});
  }
  return v;
}

TEST(SpmTokenizer, CuttingAtWordStartsChangesNothing) {
  const auto path = test::shared_path("vocab/ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  const auto fast = make_tokenizer(llama_spm_vocab());
  // An entry with U+2581 after another character makes the tokenizer merge over the whole
  // text at once; it never occurs in the test texts (no \x01), so ids must be identical.
  Vocab whole = llama_spm_vocab();
  whole.tokens.push_back({"\x01\xE2\x96\x81\x01", -1e9f, TokenType::Normal, false, false});
  const auto slow = make_tokenizer(std::move(whole));
  std::mt19937 rng(2581);
  for (int i = 0; i < 60; ++i) {
    const std::string text = test::random_utf8(rng, 1 + 5 * i);
    ASSERT_EQ(fast->encode(text), slow->encode(text)) << "seed 2581 case " << i;
  }
}

}  // namespace
}  // namespace torchless
