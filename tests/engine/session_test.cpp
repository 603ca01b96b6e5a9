#include "torchless/engine/session.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/core/error.h"

namespace torchless {
namespace {

std::filesystem::path stories_path() {
  const auto path =
      std::filesystem::path(TORCHLESS_SOURCE_DIR) / "../shared/models/stories260K.gguf";
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("reference model missing: " + path.string());
  }
  return path;
}

// The real tokenizer, except that one chosen id also counts as end of generation.
class MarkedEndTokenizer : public Tokenizer {
 public:
  MarkedEndTokenizer(std::unique_ptr<Tokenizer> inner, int32_t end)
      : inner_(std::move(inner)), end_(end) {}
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& o) const override {
    return inner_->encode(text, o);
  }
  std::string decode(std::span<const int32_t> ids) const override { return inner_->decode(ids); }
  std::string_view token_text(int32_t id) const override { return inner_->token_text(id); }
  std::string token_to_piece(int32_t id, bool special) const override {
    return inner_->token_to_piece(id, special);
  }
  TokenType token_type(int32_t id) const override { return inner_->token_type(id); }
  std::optional<int32_t> token_id(std::string_view text) const override {
    return inner_->token_id(text);
  }
  int32_t n_vocab() const override { return inner_->n_vocab(); }
  int32_t bos() const override { return inner_->bos(); }
  int32_t eos() const override { return inner_->eos(); }
  int32_t eot() const override { return inner_->eot(); }
  int32_t unk() const override { return inner_->unk(); }
  int32_t pad() const override { return inner_->pad(); }
  bool add_bos() const override { return inner_->add_bos(); }
  bool add_eos() const override { return inner_->add_eos(); }
  bool is_end_of_generation(int32_t id) const override {
    return id == end_ || inner_->is_end_of_generation(id);
  }
  std::string_view model_type() const override { return inner_->model_type(); }
  std::string_view pre_type() const override { return inner_->pre_type(); }
  std::optional<std::string> chat_template() const override { return inner_->chat_template(); }

 private:
  std::unique_ptr<Tokenizer> inner_;
  int32_t end_;
};

std::unique_ptr<Session> open_stories(int n_ctx, int32_t marked_end = -1) {
  LoadedModel model = load_model(stories_path());
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer_from_gguf(*model.gguf);
  if (marked_end >= 0) {
    tokenizer = std::make_unique<MarkedEndTokenizer>(std::move(tokenizer), marked_end);
  }
  return std::make_unique<Session>(std::move(model), init_backend("cpu"), std::move(tokenizer),
                                   n_ctx);
}

GenerationOptions greedy(int max_tokens) {
  GenerationOptions o;
  o.sampling = SamplerOptions::greedy();
  o.max_tokens = max_tokens;
  return o;
}

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};  // <s> Once upon a time

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

TEST(Session, StopsAfterMaxTokens) {
  auto session = open_stories(128);
  const auto result = session->generate(kPrompt, greedy(10));
  EXPECT_EQ(result.tokens.size(), 10u);
  EXPECT_EQ(result.stop, StopReason::MaxTokens);
  EXPECT_EQ(result.prompt_tokens, kPrompt);
  EXPECT_EQ(result.timings.prompt_tokens, 5);
  EXPECT_EQ(result.timings.generated_tokens, 10);
  EXPECT_EQ(session->n_tokens(), 15);
  EXPECT_FALSE(result.text.empty());
}

TEST(Session, StopsAtEndOfGenerationWithoutPrintingIt) {
  const auto reference = open_stories(128)->generate(kPrompt, greedy(8));
  const int32_t end = reference.tokens[5];
  auto session = open_stories(128, end);
  std::string streamed;
  const auto result = session->generate(kPrompt, greedy(100), [&](int32_t, std::string_view t) {
    streamed += t;
    return true;
  });
  ASSERT_EQ(result.stop, StopReason::EndOfGeneration);
  // Stops at the first occurrence of the marked id, which is kept in the ids but not the text.
  const auto first = std::find(reference.tokens.begin(), reference.tokens.end(), end);
  const std::vector<int32_t> expected(reference.tokens.begin(), first + 1);
  EXPECT_EQ(result.tokens, expected);
  EXPECT_EQ(streamed, result.text);
  StreamDecoder decoder(session->tokenizer());
  std::string text;
  for (auto it = expected.begin(); it + 1 != expected.end(); ++it) text += decoder.feed(*it);
  text += decoder.flush();
  EXPECT_EQ(result.text, text);
}

TEST(Session, StopsAtTheEndOfTheContext) {
  auto session = open_stories(12);
  const auto result = session->generate(kPrompt, greedy(-1));
  EXPECT_EQ(result.stop, StopReason::ContextFull);
  EXPECT_EQ(result.tokens.size(), 7u);
  EXPECT_EQ(session->n_tokens(), 12);
  // The continuation equals the first tokens of an unconstrained run.
  const auto free_run = open_stories(128)->generate(kPrompt, greedy(7));
  EXPECT_EQ(result.tokens, free_run.tokens);
}

// After a shift the sequence is the kept head plus the newest half, and its logits are
// exactly those of a fresh session fed that sequence (the cache was re-evaluated, not reused).
TEST(Session, ContextShiftKeepsTheHeadDropsTheOldestAndReEvaluates) {
  auto session = open_stories(16);
  const auto result = session->generate(kPrompt, greedy(11));
  ASSERT_EQ(session->n_tokens(), 16);
  const std::vector<int32_t> before(session->tokens().begin(), session->tokens().end());
  EXPECT_EQ(session->shift_context(1), 7);  // (16 - 1) / 2
  std::vector<int32_t> expected = {before[0]};
  expected.insert(expected.end(), before.begin() + 8, before.end());
  ASSERT_EQ(std::vector<int32_t>(session->tokens().begin(), session->tokens().end()), expected);
  const auto continued = session->generate(std::vector<int32_t>{}, greedy(3));
  const auto fresh = open_stories(16)->generate(expected, greedy(3));
  EXPECT_EQ(continued.tokens, fresh.tokens);
  // generate() shifts by itself when asked: 40 tokens through 16 positions.
  auto shifting = open_stories(16);
  GenerationOptions o = greedy(40);
  o.context_keep = 1;
  const auto long_run = shifting->generate(kPrompt, o);
  EXPECT_EQ(long_run.stop, StopReason::MaxTokens);
  EXPECT_EQ(long_run.tokens.size(), 40u);
  EXPECT_LE(shifting->n_tokens(), 16);
  // Up to the first shift it is the unshifted run.
  EXPECT_EQ(std::vector<int32_t>(long_run.tokens.begin(), long_run.tokens.begin() + 11),
            result.tokens);
}

TEST(Session, PromptLongerThanTheContextIsAnError) {
  auto session = open_stories(4);
  EXPECT_THROW(session->generate(kPrompt, greedy(1)), Error);
  EXPECT_THROW(session->append(kPrompt), Error);
  auto fits = open_stories(5);
  const auto result = fits->generate(kPrompt, greedy(3));
  EXPECT_EQ(result.stop, StopReason::ContextFull);
  EXPECT_TRUE(result.tokens.empty());
}

TEST(Session, KvCacheAcrossTwoAppendsEqualsOneBatchedPass) {
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 432, 259, 301, 330, 270, 296};
  auto batched = open_stories(64);
  const auto all = batched->append_all_logits(tokens);
  const std::vector<float> all_rows(all.begin(), all.end());

  auto split = open_stories(64);
  const std::span<const int32_t> ids(tokens);
  const auto first = split->append_all_logits(ids.first(4));
  const std::vector<float> first_rows(first.begin(), first.end());
  const auto second = split->append_all_logits(ids.subspan(4));
  const std::vector<float> second_rows(second.begin(), second.end());
  EXPECT_LE(max_abs_diff(first_rows, std::span(all_rows).first(4 * 512)), 1e-4);
  EXPECT_LE(max_abs_diff(second_rows, std::span(all_rows).subspan(4 * 512)), 1e-4);

  auto stepwise = open_stories(64);
  std::span<const float> last;
  for (int32_t id : tokens) last = stepwise->append(std::span(&id, 1));
  EXPECT_LE(max_abs_diff(last, std::span(all_rows).last(512)), 1e-4);
}

TEST(Session, GenerationContinuesAcrossCalls) {
  const auto one_call = open_stories(128)->generate(kPrompt, greedy(12));
  auto session = open_stories(128);
  const auto part1 = session->generate(kPrompt, greedy(5));
  const auto part2 = session->generate(std::span<const int32_t>{}, greedy(7));
  std::vector<int32_t> joined = part1.tokens;
  joined.insert(joined.end(), part2.tokens.begin(), part2.tokens.end());
  EXPECT_EQ(joined, one_call.tokens);
  EXPECT_EQ(part1.text + part2.text, one_call.text);
}

TEST(Session, TruncateThenRegenerateRepeatsTheContinuation) {
  auto session = open_stories(128);
  const auto first = session->generate(kPrompt, greedy(9));
  session->truncate(static_cast<int>(kPrompt.size()));
  const auto again = session->generate(std::span<const int32_t>{}, greedy(9));
  EXPECT_EQ(again.tokens, first.tokens);
  session->reset();
  EXPECT_EQ(session->n_tokens(), 0);
  EXPECT_EQ(session->generate(kPrompt, greedy(9)).tokens, first.tokens);
}

TEST(Session, SeededSamplingIsReproducible) {
  GenerationOptions o;
  o.max_tokens = 20;
  o.sampling.seed = 1234;
  const auto a = open_stories(128)->generate(kPrompt, o);
  const auto b = open_stories(128)->generate(kPrompt, o);
  EXPECT_EQ(a.tokens, b.tokens);
}

TEST(Session, OutOfVocabularyTokenIsAnError) {
  auto session = open_stories(16);
  const std::vector<int32_t> bad = {1, 512};
  EXPECT_THROW(session->append(bad), Error);
  EXPECT_EQ(session->n_tokens(), 0);  // a rejected append leaves the sequence unchanged
  EXPECT_EQ(session->generate(kPrompt, greedy(2)).tokens.size(), 2u);
}

}  // namespace
}  // namespace torchless
