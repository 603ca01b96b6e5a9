// A Session with SessionOptions::tensor_parallel (the --tensor-parallel flag): stories260K split
// over 2 CPU ranks generates the greedy tokens of the unsplit session, and serving it goes
// through the sequential scheduler (continuous batching does not run split), with the same tokens.
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/core/error.h"
#include "torchless/engine/scheduler_factory.h"
#include "torchless/engine/sequential_scheduler.h"
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

TEST(SessionTensorParallel, ServesThroughTheSequentialScheduler) {
  Session whole(stories(1));
  const GenerationResult expected = greedy(whole, 12);
  Session split(stories(2));
  SchedulerOptions options;
  options.kv_dtype = DType::F32;
  auto scheduler = split.make_scheduler(options);
  EXPECT_NE(dynamic_cast<SequentialScheduler*>(scheduler.get()), nullptr);
  std::mutex mutex;
  std::vector<int32_t> ids;
  std::promise<SequenceSummary> ended;
  SequenceRequest r;
  whole.reset();  // so that tokenize() adds BOS again
  r.prompt = whole.tokenize("Once upon a time");
  r.max_tokens = 12;
  r.sampling = SamplerOptions::greedy();
  scheduler->submit(r, {[&](const SequenceToken& t) {
                          std::lock_guard lock(mutex);
                          ids.push_back(t.id);
                          return true;
                        },
                        [&](const SequenceSummary& s) { ended.set_value(s); }});
  ended.get_future().get();
  EXPECT_EQ(ids, expected.tokens);
}

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
