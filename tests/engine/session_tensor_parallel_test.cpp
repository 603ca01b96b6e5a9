// A Session with SessionOptions::tensor_parallel (the --tensor-parallel flag): stories260K split
// over 2 CPU ranks generates the greedy tokens of the unsplit session, and serving it split over
// 2 and 4 ranks goes through the BatchScheduler (every rank runs each batched pass), several
// requests at once giving the greedy tokens of the unsplit model.
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/core/error.h"
#include "torchless/engine/batch_scheduler.h"
#include "torchless/engine/scheduler_factory.h"
#include "torchless/engine/session.h"

namespace torchless {
namespace {

SessionOptions stories(int tensor_parallel) {
  SessionOptions options;
  options.model_path =
      std::filesystem::path(TORCHLESS_SOURCE_DIR) / "../shared/models/stories260K.gguf";
  if (!std::filesystem::exists(options.model_path)) {
    throw std::runtime_error("reference model missing: " + options.model_path.string());
  }
  options.backend = "cpu";
  options.threads = 2;
  options.tensor_parallel = tensor_parallel;
  return options;
}

GenerationResult greedy(Session& session, int max_tokens) {
  GenerationOptions g;
  g.max_tokens = max_tokens;
  g.sampling = SamplerOptions::greedy();
  return session.generate("Once upon a time", g);
}

TEST(SessionTensorParallel, TwoRanksGenerateTheTokensOfOne) {
  Session whole(stories(1));
  Session split(stories(2));
  EXPECT_EQ(split.transformer().tensor_parallel(), 2);
  const GenerationResult expected = greedy(whole, 32);
  const GenerationResult actual = greedy(split, 32);
  EXPECT_EQ(actual.tokens, expected.tokens);
  EXPECT_EQ(actual.text, expected.text);
  // The context goes on in the same sequence (the split KV cache keeps its positions).
  split.truncate(3);
  whole.truncate(3);
  EXPECT_EQ(greedy(split, 8).tokens, greedy(whole, 8).tokens);
}

const std::vector<std::string> kPrompts = {
    "Once upon a time",
    "Lily wanted to play with her ball in the park, but",
    "The little dog ran to the big red barn and saw a cat. The cat was sleeping in the sun. The "
    "dog said",
    "The little dog ran to the big red barn and saw a cat. The cat was sleeping in the sun. The "
    "dog said hello",
};

// The greedy tokens of kPrompts, run together by the session's scheduler, which must be the
// BatchScheduler: short chunks so that prompts are prefilled beside decoding sequences, and the
// prefix cache on. The first three are submitted at once; the last, which continues the third,
// once the third has its first token (so its prompt's full blocks are in the prefix cache
// whatever the timing), and it finds them. The unsplit BatchScheduler's tokens are
// Session::generate's (BatchScheduler.GreedyTokensEqualSessionGenerateWhileBatched).
struct Served {
  std::vector<std::vector<int32_t>> ids;
  std::vector<int> cached_prompt_tokens;
};

Served serve_batched(Session& session) {
  SchedulerOptions options;
  options.kv_dtype = DType::F32;
  options.slots = 3;
  options.max_batch_tokens = 12;
  auto scheduler = session.make_scheduler(options);
  EXPECT_NE(dynamic_cast<BatchScheduler*>(scheduler.get()), nullptr);
  std::mutex mutex;
  Served out;
  out.ids.resize(kPrompts.size());
  std::vector<std::promise<SequenceSummary>> ended(kPrompts.size());
  // Set at the third's first token, or at its end should it fail before one.
  std::promise<void> third_started;
  bool third_signalled = false;
  const size_t last = kPrompts.size() - 1;
  auto signal_third = [&] {
    if (!std::exchange(third_signalled, true)) third_started.set_value();
  };
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    if (i == last) third_started.get_future().get();
    session.reset();  // so that tokenize() adds BOS again
    SequenceRequest r;
    r.prompt = session.tokenize(kPrompts[i]);
    r.max_tokens = 16;
    r.sampling = SamplerOptions::greedy();
    r.stop_at_end_of_generation = false;  // 16 tokens each, whatever they are
    scheduler->submit(r, {[&, i](const SequenceToken& t) {
                            std::lock_guard lock(mutex);
                            out.ids[i].push_back(t.id);
                            if (i == last - 1) signal_third();
                            return true;
                          },
                          [&, i](const SequenceSummary& s) {
                            std::lock_guard lock(mutex);
                            if (i == last - 1) signal_third();
                            ended[i].set_value(s);
                          }});
  }
  for (auto& e : ended) {
    const SequenceSummary s = e.get_future().get();
    EXPECT_EQ(s.end, SequenceEnd::MaxTokens) << s.error;
    out.cached_prompt_tokens.push_back(s.cached_prompt_tokens);
  }
  return out;
}

class SessionTensorParallelBatch : public ::testing::TestWithParam<int> {};

TEST_P(SessionTensorParallelBatch, ServesConcurrentRequestsWithTheTokensOfOne) {
  Session whole(stories(1));
  const auto expected = serve_batched(whole);
  Session split(stories(GetParam()));
  ASSERT_EQ(split.transformer().tensor_parallel(), GetParam());
  const auto actual = serve_batched(split);
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    ASSERT_EQ(actual.ids[i].size(), 16u) << kPrompts[i];
    EXPECT_EQ(actual.ids[i], expected.ids[i]) << kPrompts[i];
  }
  // The last prompt read the third's blocks from every rank's pools.
  EXPECT_GT(actual.cached_prompt_tokens.back(), 0);
  EXPECT_EQ(actual.cached_prompt_tokens, expected.cached_prompt_tokens);
}

// stories260K: 8 heads and 4 KV heads, 172 feed-forward rows.
INSTANTIATE_TEST_SUITE_P(Ranks, SessionTensorParallelBatch, ::testing::Values(2, 4),
                         [](const auto& info) { return "x" + std::to_string(info.param); });

TEST(SessionTensorParallel, RefusesAnUnsplittableCount) {
  // stories260K has 4 KV heads.
  try {
    Session session(stories(3));
    FAIL() << "3 ranks accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("it splits over N = 1, 2, 4"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace torchless
