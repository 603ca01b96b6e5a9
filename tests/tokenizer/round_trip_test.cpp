// Properties that hold for every vocabulary: decode(encode(x)) == x for valid UTF-8, invalid
// UTF-8 is handled as documented in tokenizer.h and never crashes.
#include "tokenizer/tokenizer_test_util.h"
#include "torchless/tokenizer/byte_unicode.h"
#include "torchless/tokenizer/utf8.h"

namespace torchless {
namespace {

// Byte-level vocabularies may lack the stand-ins of bytes their training data never had
// (StarCoder has no "ñ" = 0xF1): such bytes cannot be encoded and are dropped, as in HF and
// llama.cpp. This is the text a decode can give back.
std::string representable(const Tokenizer& tokenizer, const std::string& text) {
  if (tokenizer.model_type() != "gpt2") return text;
  std::string out;
  for (char c : text) {
    if (tokenizer.token_id(byte_to_unicode(static_cast<uint8_t>(c)))) out += c;
  }
  return out;
}

class EveryVocab : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    tokenizer_ = test::load_gguf_tokenizer(GetParam());
    ASSERT_NE(tokenizer_, nullptr);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_P(EveryVocab, DecodeInvertsEncodeOnRandomValidUtf8) {
  const uint32_t seed = 20261126;
  std::mt19937 rng(seed);
  for (int i = 0; i < 300; ++i) {
    const std::string text = test::random_utf8(rng, 1 + i % 97);
    const auto ids = tokenizer_->encode(text, test::encode_options(i % 2 == 0));
    ASSERT_EQ(tokenizer_->decode(ids), representable(*tokenizer_, text))
        << GetParam() << " seed " << seed << " case " << i << " \"" << test::escaped(text) << "\"";
  }
}

TEST_P(EveryVocab, EveryIdIsInRangeAndBosEosFollowTheOptions) {
  std::mt19937 rng(7);
  const std::string text = test::random_utf8(rng, 200);
  const auto plain = tokenizer_->encode(text, test::encode_options(false, false));
  for (int32_t id : plain) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, tokenizer_->n_vocab());
  }
  if (tokenizer_->bos() >= 0) {
    const auto with_bos = tokenizer_->encode(text, test::encode_options(true, false));
    ASSERT_EQ(with_bos.size(), plain.size() + 1);
    EXPECT_EQ(with_bos.front(), tokenizer_->bos());
  }
  if (tokenizer_->eos() >= 0) {
    const auto with_eos = tokenizer_->encode(text, test::encode_options(false, true));
    ASSERT_EQ(with_eos.size(), plain.size() + 1);
    EXPECT_EQ(with_eos.back(), tokenizer_->eos());
    EXPECT_TRUE(tokenizer_->is_end_of_generation(tokenizer_->eos()));
  }
  EXPECT_TRUE(tokenizer_->encode("", test::encode_options(false, false)).empty());
}

// SentencePiece vocabularies keep every invalid byte as its <0xNN> byte token, so even
// invalid input round-trips; byte-level BPE reads each invalid byte as U+FFFD (llama.cpp).
TEST_P(EveryVocab, InvalidUtf8IsDefinedAndNeverCrashes) {
  const bool spm = tokenizer_->model_type() == "llama";
  const std::vector<std::string> cases = {"\xFF",
                                          "a\x80"
                                          "b",
                                          "\xE2\x82",
                                          "\xE2\x82"
                                          "abc",
                                          "\xC0\xAF",
                                          "\xED\xA0\x80",
                                          "\xF4\x90\x80\x80",
                                          "x\xF0\x9F\x98",
                                          "\xFE\xFF\xFE",
                                          " \xC3 \xA9 "};
  for (const auto& text : cases) {
    const auto ids = tokenizer_->encode(text, test::encode_options(false));
    const std::string expected =
        spm ? text : representable(*tokenizer_, utf8::replace_invalid(text));
    EXPECT_EQ(tokenizer_->decode(ids), expected)
        << GetParam() << " \"" << test::escaped(text) << "\"";
  }
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 200; ++i) {
    std::string text(1 + i % 41, '\0');
    for (char& c : text) c = static_cast<char>(byte(rng));
    const auto ids =
        tokenizer_->encode(text, test::encode_options(false, std::nullopt, i % 2 == 1));
    if (i % 2 == 0) {
      const std::string expected =
          spm ? text : representable(*tokenizer_, utf8::replace_invalid(text));
      ASSERT_EQ(tokenizer_->decode(ids), expected) << GetParam() << " seed 99 case " << i;
    }
  }
}

TEST_P(EveryVocab, StreamDecoderNeverEmitsBrokenUtf8AndLosesNothing) {
  std::mt19937 rng(4242);
  for (int i = 0; i < 50; ++i) {
    const std::string text = test::random_utf8(rng, 5 + i * 3);
    const auto ids = tokenizer_->encode(text, test::encode_options(false));
    std::string pieces;
    for (int32_t id : ids) pieces += tokenizer_->token_to_piece(id);
    StreamDecoder decoder(*tokenizer_);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string chunk = decoder.feed(id);
      ASSERT_TRUE(utf8::is_valid(chunk)) << GetParam() << " case " << i;
      streamed += chunk;
    }
    streamed += decoder.flush();
    EXPECT_EQ(streamed, utf8::replace_invalid(pieces)) << GetParam() << " case " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(SharedVocab, EveryVocab, ::testing::ValuesIn(test::all_gguf_vocabs()),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).stem().string();
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace torchless
