// stories260K: llama.cpp's reference tokenisations (stories260K.reference.json), and the
// llama2.c tokenizer file tok512.bin, which must tokenize exactly like the GGUF vocabulary.
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_test_util.h"
#include "torchless/formats/model_loader.h"

namespace torchless {
namespace {

nlohmann::json reference() {
  std::string text;
  const auto path = test::shared_path("models/stories260K.reference.json");
  if (!test::read_file(path, text)) {
    ADD_FAILURE() << "missing " << path;
    return {};
  }
  return nlohmann::json::parse(text);
}

std::unique_ptr<Tokenizer> llama2c_tokenizer() {
  const auto path = test::shared_path("models/tok512.bin");
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "missing " << path;
    return nullptr;
  }
  return load_llama2c_tokenizer(path, 512);
}

TEST(Stories260K, PromptsTokenizeAsLlamaCpp) {
  auto tokenizer = test::load_gguf_tokenizer("models/stories260K.gguf");
  ASSERT_NE(tokenizer, nullptr);
  const auto ref = reference();
  ASSERT_EQ(ref.at("cases").size(), 3u);
  for (const auto& c : ref.at("cases")) {
    const std::string prompt = c.at("prompt");
    const auto ids = tokenizer->encode(prompt);  // the vocabulary's own add-BOS flag
    EXPECT_EQ(ids, c.at("prompt_ids").get<std::vector<int32_t>>()) << prompt;
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.emplace_back(tokenizer->token_text(id));
    EXPECT_EQ(pieces, c.at("prompt_pieces").get<std::vector<std::string>>()) << prompt;
    EXPECT_EQ(tokenizer->decode(ids), prompt);
  }
}

TEST(Stories260K, GreedyIdsDecodeToTheReferenceText) {
  auto tokenizer = test::load_gguf_tokenizer("models/stories260K.gguf");
  ASSERT_NE(tokenizer, nullptr);
  const auto ref = reference();  // kept alive: the loop walks inside it
  for (const auto& c : ref.at("cases")) {
    std::string text;
    StreamDecoder stream(*tokenizer);
    std::string streamed;
    for (int32_t id : c.at("greedy_ids").get<std::vector<int32_t>>()) {
      text += tokenizer->token_to_piece(id);
      streamed += stream.feed(id);
    }
    streamed += stream.flush();
    EXPECT_EQ(text, c.at("greedy_text").get<std::string>());
    EXPECT_EQ(streamed, text);
  }
}

TEST(Stories260K, VocabularyFlagsAndSpecialTokens) {
  auto tokenizer = test::load_gguf_tokenizer("models/stories260K.gguf");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->n_vocab(), 512);
  EXPECT_EQ(tokenizer->model_type(), "llama");
  EXPECT_EQ(tokenizer->bos(), 1);
  EXPECT_EQ(tokenizer->eos(), 2);
  EXPECT_EQ(tokenizer->unk(), 0);
  EXPECT_EQ(tokenizer->eot(), -1);
  EXPECT_TRUE(tokenizer->add_bos());
  EXPECT_FALSE(tokenizer->add_eos());
  EXPECT_TRUE(tokenizer->is_end_of_generation(2));
  EXPECT_FALSE(tokenizer->is_end_of_generation(1));
  EXPECT_EQ(tokenizer->token_type(3), TokenType::Byte);
  EXPECT_EQ(tokenizer->token_to_piece(3 + '\n'), "\n");
  EXPECT_EQ(tokenizer->token_to_piece(1), "");
  EXPECT_EQ(tokenizer->token_to_piece(1, true), "<s>");
  EXPECT_FALSE(tokenizer->chat_template().has_value());
  EXPECT_THROW(tokenizer->token_text(512), Error);
  EXPECT_THROW(tokenizer->token_to_piece(-1), Error);
}

TEST(Stories260K, ParseSpecialTurnsControlTextIntoTokens) {
  auto tokenizer = test::load_gguf_tokenizer("models/stories260K.gguf");
  ASSERT_NE(tokenizer, nullptr);
  const auto special =
      tokenizer->encode("Hi</s><s>Yo", test::encode_options(false, std::nullopt, true));
  // A space prefix follows every special token, as llama.cpp's SPM tokenizer does.
  std::vector<int32_t> expected = tokenizer->encode("Hi", test::encode_options(false));
  expected.push_back(2);
  expected.push_back(1);
  for (int32_t id : tokenizer->encode("Yo", test::encode_options(false))) expected.push_back(id);
  EXPECT_EQ(special, expected);
  const auto plain = tokenizer->encode("Hi</s>", test::encode_options(false));
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(tokenizer->decode(plain), "Hi</s>");
}

TEST(Llama2cTokenizer, Tok512MatchesTheGgufVocabulary) {
  auto gguf = test::load_gguf_tokenizer("models/stories260K.gguf");
  auto bin = llama2c_tokenizer();
  ASSERT_NE(gguf, nullptr);
  ASSERT_NE(bin, nullptr);
  ASSERT_EQ(bin->n_vocab(), gguf->n_vocab());
  for (int32_t id = 0; id < gguf->n_vocab(); ++id) {
    EXPECT_EQ(bin->token_text(id), gguf->token_text(id)) << id;
    EXPECT_EQ(bin->token_type(id), gguf->token_type(id)) << id;
  }
  EXPECT_EQ(bin->bos(), gguf->bos());
  EXPECT_EQ(bin->eos(), gguf->eos());
}

TEST(Llama2cTokenizer, Tok512TokenizesLikeTheGguf) {
  auto gguf = test::load_gguf_tokenizer("models/stories260K.gguf");
  auto bin = llama2c_tokenizer();
  ASSERT_NE(gguf, nullptr);
  ASSERT_NE(bin, nullptr);
  const auto ref = reference();  // kept alive: the loop walks inside it
  for (const auto& c : ref.at("cases")) {
    EXPECT_EQ(bin->encode(c.at("prompt").get<std::string>()),
              c.at("prompt_ids").get<std::vector<int32_t>>());
  }
  std::mt19937 rng(512);
  for (int i = 0; i < 100; ++i) {
    const std::string text = test::random_utf8(rng, 1 + i);
    EXPECT_EQ(bin->encode(text), gguf->encode(text)) << "seed 512 case " << i;
  }
}

TEST(Llama2cTokenizer, TruncatedFileIsAnError) {
  const auto path = test::shared_path("models/tok512.bin");
  std::string bytes;
  ASSERT_TRUE(test::read_file(path, bytes)) << path;
  const auto tmp = std::filesystem::temp_directory_path() / "torchless_tok_truncated.bin";
  for (size_t cut : {size_t{0}, size_t{3}, size_t{9}, bytes.size() / 2, bytes.size() - 1}) {
    std::ofstream(tmp, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
    EXPECT_THROW(load_llama2c_tokenizer(tmp, 512), Error) << "cut at " << cut;
  }
  std::filesystem::remove(tmp);
}

TEST(LoadTokenizer, FollowsTheLoadedModelsFormat) {
  const LoadedModel gguf_model = load_model(test::shared_path("models/stories260K.gguf"));
  const LoadedModel bin_model = load_model(test::shared_path("models/stories260K.bin"));
  const auto gguf = load_tokenizer(gguf_model);
  const auto bin = load_tokenizer(bin_model);  // tok512.bin, by llama2.c's naming convention
  const auto explicit_bin = load_tokenizer(bin_model, test::shared_path("models/tok512.bin"));
  const auto gguf_override =
      load_tokenizer(bin_model, test::shared_path("models/stories260K.gguf"));
  const std::string text = "Lily wanted to play.";
  EXPECT_EQ(bin->encode(text), gguf->encode(text));
  EXPECT_EQ(explicit_bin->encode(text), gguf->encode(text));
  EXPECT_EQ(gguf_override->encode(text), gguf->encode(text));
  EXPECT_EQ(bin->n_vocab(), bin_model.config.n_vocab);
  EXPECT_THROW(load_tokenizer(gguf_model, test::shared_path("models/no-such-tokenizer.bin")),
               Error);
}

}  // namespace
}  // namespace torchless
