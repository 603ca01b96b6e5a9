// The regex pre-tokenizer and the UTF-8 / byte-mapping helpers, against hand-checked splits.
#include "torchless/tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_test_util.h"
#include "torchless/tokenizer/byte_unicode.h"
#include "torchless/tokenizer/utf8.h"
#include "torchless/tokenizer/vocab.h"

namespace torchless {
namespace {

std::vector<std::string> split(const std::string& pre_type, const std::string& text) {
  RegexSplitter splitter(split_regexes_for_pre_type(pre_type));
  std::vector<std::string> out;
  for (auto piece : splitter.split(text)) out.emplace_back(piece);
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2SplitsWordsContractionsAndTrailingSpaces) {
  EXPECT_EQ(split("gpt-2", "Hello world's  end  "),
            (Pieces{"Hello", " world", "'s", " ", " end", "  "}));
  EXPECT_EQ(split("gpt-2", "a\n\n\nb"), (Pieces{"a", "\n\n", "\n", "b"}));
}

TEST(PreTokenizer, UnicodeClassesAreNotAsciiApproximations) {
  // Letters of any script are \p{L}; Arabic-Indic digits are \p{N}; U+3000 is \s.
  EXPECT_EQ(split("gpt-2", "Привет мир 日本語"), (Pieces{"Привет", " мир", " 日本語"}));
  EXPECT_EQ(split("gpt-2", "x\xD9\xA3\xD9\xA4"), (Pieces{"x", "\xD9\xA3\xD9\xA4"}));
  EXPECT_EQ(split("gpt-2",
                  "a\xE3\x80\x80\xE3\x80\x80"
                  "b"),
            (Pieces{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));  // not one symbol run
  // Combining marks are not letters: "e" + U+0301 splits in GPT-2's regex.
  EXPECT_EQ(split("gpt-2", "e\xCC\x81"), (Pieces{"e", "\xCC\x81"}));
}

TEST(PreTokenizer, DigitHandlingDiffersByPreType) {
  EXPECT_EQ(split("gpt-2", "a 12345"), (Pieces{"a", " 12345"}));
  EXPECT_EQ(split("starcoder", "a 12345"), (Pieces{"a", " ", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(split("llama-bpe", "a 12345"), (Pieces{"a", " ", "123", "45"}));
  EXPECT_EQ(split("qwen2", "12345"), (Pieces{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(split("deepseek-coder", "x=12"), (Pieces{"x", "=", "1", "2"}));
}

// Falcon's three regexes apply in turn, each to the pieces of the one before: punctuation runs,
// then GPT-2's split, then runs of three digits.
TEST(PreTokenizer, FalconAppliesItsRegexesInTurn) {
  EXPECT_EQ(split("falcon", "Hi, there!! 12345"),
            (Pieces{"Hi", ",", " there", "!!", " ", "123", "45"}));
}

TEST(PreTokenizer, Llama3KeepsCaseInsensitiveContractionsAndNewlines) {
  EXPECT_EQ(split("llama-bpe", "I'M here\n\n  x"), (Pieces{"I", "'M", " here", "\n\n", " ", " x"}));
}

TEST(PreTokenizer, DollarMeansEndOfPieceOnly) {
  // deepseek-llm's "\s+$" must not match the spaces before a final newline.
  const auto pieces = split("deepseek-llm", "ab  \n");
  EXPECT_EQ(pieces, (Pieces{"ab", "  ", "\n"}));
}

TEST(PreTokenizer, EveryNamedPreTypeCompiles) {
  for (const char* name :
       {"default",     "llama3",         "llama-bpe",    "dbrx",    "smaug-bpe", "deepseek-llm",
        "deepseek-v3", "deepseek-coder", "falcon",       "falcon3", "mpt",       "starcoder",
        "gpt-2",       "refact",         "command-r",    "qwen2",   "stablelm2", "olmo",
        "poro-chat",   "chatglm-bpe",    "viking",       "jais",    "tekken",    "smollm",
        "codeshell",   "bloom",          "gpt3-finnish", "exaone",  "chameleon", "minerva-7b",
        "megrez"}) {
    EXPECT_NO_THROW(RegexSplitter(split_regexes_for_pre_type(name))) << name;
  }
  EXPECT_THROW(split_regexes_for_pre_type("no-such-pre"), Error);
}

TEST(PreTokenizer, PiecesAlwaysConcatenateToTheInput) {
  std::mt19937 rng(1234);
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder",
                           "starcoder", "falcon", "default", "tekken"}) {
    RegexSplitter splitter(split_regexes_for_pre_type(name));
    for (int i = 0; i < 30; ++i) {
      const std::string text = test::random_utf8(rng, 1 + 7 * i);
      std::string joined;
      for (auto piece : splitter.split(text)) {
        ASSERT_FALSE(piece.empty());
        joined += piece;
      }
      ASSERT_EQ(joined, text) << name << " seed 1234 case " << i;
    }
  }
}

TEST(Utf8, ValidatesStrictly) {
  EXPECT_TRUE(utf8::is_valid("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(utf8::is_valid("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8::is_valid("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(utf8::is_valid("\xE2\x82"));          // truncated
  EXPECT_EQ(utf8::replace_invalid("a\xE2\x82"
                                  "b"),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8::complete_prefix_length("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(utf8::complete_prefix_length("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(utf8::complete_prefix_length("ab\xFF"), 3u);  // invalid, not incomplete
}

TEST(ByteUnicode, MapsEveryByteReversiblyAsGpt2Does) {
  EXPECT_EQ(byte_to_unicode(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(byte_to_unicode('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(byte_to_unicode('a'), "a");
  for (int b = 0; b < 256; ++b) {
    const std::string& s = byte_to_unicode(static_cast<uint8_t>(b));
    const size_t n = utf8::valid_sequence_length(s, 0);
    ASSERT_EQ(n, s.size());
    EXPECT_EQ(unicode_to_byte(utf8::decode_at(s, 0, n)), b);
  }
  EXPECT_FALSE(unicode_to_byte(0x20).has_value());
  EXPECT_FALSE(unicode_to_byte(0x2581).has_value());
}

}  // namespace
}  // namespace torchless
