// StreamDecoder on characters whose bytes are split across byte-fallback tokens.
#include <fmt/format.h>

#include "tokenizer/tokenizer_test_util.h"
#include "torchless/tokenizer/utf8.h"

namespace torchless {
namespace {

class StreamDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = test::load_gguf_tokenizer("models/stories260K.gguf");
    ASSERT_NE(tokenizer_, nullptr);
  }
  int32_t byte_token(int b) {
    const auto id = tokenizer_->token_id(fmt::format("<0x{:02X}>", b));
    EXPECT_TRUE(id.has_value());
    return id.value_or(0);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(StreamDecoderTest, HoldsBackASplitCharacterUntilItIsComplete) {
  // U+1F600 (4 bytes) and U+65E5 (3 bytes): stories260K has no piece for either, so each byte
  // is its own token.
  const std::string text =
      "a\xF0\x9F\x98\x80"
      "b\xE6\x97\xA5";
  const auto ids = tokenizer_->encode(text, test::encode_options(false));
  StreamDecoder decoder(*tokenizer_);
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(decoder.feed(id));
  EXPECT_EQ(decoder.flush(), "");
  std::string joined;
  int empty_chunks = 0;
  for (const auto& c : chunks) {
    EXPECT_TRUE(utf8::is_valid(c));
    if (c.empty()) ++empty_chunks;
    joined += c;
  }
  EXPECT_EQ(joined, " " + text);   // token_to_piece keeps the SentencePiece space prefix
  EXPECT_EQ(empty_chunks, 3 + 2);  // the leading bytes of the two split characters
}

TEST_F(StreamDecoderTest, InvalidBytesBecomeReplacementCharacters) {
  StreamDecoder decoder(*tokenizer_);
  EXPECT_EQ(decoder.feed(byte_token(0xFF)), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.feed(byte_token(0xE2)), "");  // could still become a character
  EXPECT_EQ(decoder.feed(byte_token(0x82)), "");
  // 'A' cannot continue it: both held bytes are emitted as U+FFFD, then "A".
  const auto a = tokenizer_->encode("A", test::encode_options(false));
  std::string out;
  for (int32_t id : a) out += decoder.feed(id);
  EXPECT_EQ(out, "\xEF\xBF\xBD\xEF\xBF\xBD A");
}

TEST_F(StreamDecoderTest, FlushReplacesAnIncompleteTail) {
  StreamDecoder decoder(*tokenizer_);
  EXPECT_EQ(decoder.feed(byte_token(0xF0)), "");
  EXPECT_EQ(decoder.feed(byte_token(0x9F)), "");
  EXPECT_EQ(decoder.flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(decoder.flush(), "");
}

TEST_F(StreamDecoderTest, ControlTokensProduceNothing) {
  StreamDecoder decoder(*tokenizer_);
  EXPECT_EQ(decoder.feed(tokenizer_->bos()), "");
  EXPECT_EQ(decoder.feed(tokenizer_->eos()), "");
}

}  // namespace
}  // namespace torchless
