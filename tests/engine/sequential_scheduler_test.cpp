#include "torchless/engine/sequential_scheduler.h"

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/core/error.h"
#include "torchless/engine/session.h"

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

// What one sequence reported, filled from the scheduler's thread.
struct Recorder {
  std::mutex mutex;
  std::vector<SequenceToken> tokens;
  std::promise<SequenceSummary> ended;
  int stop_after = -1;  // on_token returns false after this many tokens

  SequenceCallbacks callbacks() {
    return {[this](const SequenceToken& t) {
              std::lock_guard lock(mutex);
              tokens.push_back(t);
              return stop_after < 0 || static_cast<int>(tokens.size()) < stop_after;
            },
            [this](const SequenceSummary& s) { ended.set_value(s); }};
  }
  std::vector<int32_t> ids() {
    std::lock_guard lock(mutex);
    std::vector<int32_t> out;
    for (const auto& t : tokens) out.push_back(t.id);
    return out;
  }
};

class SequentialSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SessionOptions options;
    options.model_path = stories_path();
    options.backend = "cpu";
    options.threads = 1;
    session_ = std::make_unique<Session>(options);
  }

  SequenceRequest request(std::string_view text, int max_tokens, uint64_t seed = 7) {
    SequenceRequest r;
    r.prompt = session_->tokenize(text);
    r.max_tokens = max_tokens;
    r.sampling.seed = seed;
    return r;
  }

  std::unique_ptr<Session> session_;
};

TEST_F(SequentialSchedulerTest, GreedyTokensEqualTheSessionsForTheSamePrompt) {
  GenerationOptions g;
  g.max_tokens = 24;
  g.sampling = SamplerOptions::greedy();
  const GenerationResult reference = session_->generate("Once upon a time", g);
  session_->reset();  // so that tokenize() adds BOS again

  SchedulerOptions options;
  options.kv_dtype = DType::F32;  // as the session's cache
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(),
                                options);
  Recorder rec;
  SequenceRequest r = request("Once upon a time", 24);
  r.sampling = SamplerOptions::greedy();
  scheduler.submit(r, rec.callbacks());
  const SequenceSummary summary = rec.ended.get_future().get();
  EXPECT_EQ(rec.ids(), reference.tokens);
  EXPECT_EQ(summary.end, SequenceEnd::MaxTokens);
  EXPECT_EQ(summary.generated_tokens, 24);
  EXPECT_EQ(summary.prompt_tokens, static_cast<int>(r.prompt.size()));
}

TEST_F(SequentialSchedulerTest, ConcurrentSequencesGetTheTokensTheyGetAlone) {
  SchedulerOptions options;
  options.slots = 3;
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(),
                                options);
  const std::vector<std::string> prompts = {"Once upon a time", "Lily had a", "The dog",
                                            "One day, a big", "Tom"};
  std::vector<std::vector<int32_t>> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Recorder rec;
    scheduler.submit(request(prompts[i], 17, 100 + i), rec.callbacks());
    rec.ended.get_future().get();
    alone.push_back(rec.ids());
  }
  std::vector<std::unique_ptr<Recorder>> together;
  for (size_t i = 0; i < prompts.size(); ++i) {
    together.push_back(std::make_unique<Recorder>());
    scheduler.submit(request(prompts[i], 17, 100 + i), together.back()->callbacks());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    together[i]->ended.get_future().get();
    EXPECT_EQ(together[i]->ids(), alone[i]) << "prompt " << i << " (seed " << 100 + i << ")";
  }
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.requests_finished, 10);
}

TEST_F(SequentialSchedulerTest, LogprobsAreTheRawSoftmaxWithTheTopTokensFirst) {
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(), {});
  Recorder rec;
  SequenceRequest r = request("Once upon a time", 5);
  r.sampling = SamplerOptions::greedy();
  r.n_probs = 4;
  scheduler.submit(r, rec.callbacks());
  rec.ended.get_future().get();
  ASSERT_EQ(rec.tokens.size(), 5u);
  for (const SequenceToken& t : rec.tokens) {
    ASSERT_EQ(t.top.size(), 4u);
    EXPECT_EQ(t.top[0].id, t.id);  // greedy picks the most likely token
    EXPECT_NEAR(std::exp(t.logprob), t.top[0].p, 1e-5);
    for (size_t i = 1; i < t.top.size(); ++i) EXPECT_GE(t.top[i - 1].p, t.top[i].p);
  }
}

TEST_F(SequentialSchedulerTest, ReturningFalseFromOnTokenStopsTheSequence) {
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(), {});
  Recorder rec;
  rec.stop_after = 3;
  scheduler.submit(request("Once upon a time", 50), rec.callbacks());
  const SequenceSummary s = rec.ended.get_future().get();
  EXPECT_EQ(s.end, SequenceEnd::Stopped);
  EXPECT_EQ(s.generated_tokens, 3);
}

TEST_F(SequentialSchedulerTest, CancelEndsQueuedAndRunningSequencesAndFreesTheirSlots) {
  SchedulerOptions options;
  options.slots = 1;
  options.n_ctx = 100;
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(),
                                options);
  Recorder running;
  Recorder queued;
  SequenceRequest endless = request("Once upon a time", -1);
  endless.stop_at_end_of_generation = false;
  // Cancels itself from its own callback once it has produced a few tokens, and on every token
  // after that until submit() has returned its id (the scheduler's thread may get there first).
  std::atomic<uint64_t> running_id = 0;
  SequenceCallbacks self_cancel = running.callbacks();
  self_cancel.on_token = [&, inner = self_cancel.on_token](const SequenceToken& t) {
    if (running.ids().size() >= 2 && running_id != 0) scheduler.cancel(running_id);
    return inner(t);
  };
  running_id = scheduler.submit(endless, self_cancel);
  const uint64_t queued_id = scheduler.submit(endless, queued.callbacks());
  scheduler.cancel(queued_id);
  EXPECT_EQ(queued.ended.get_future().get().end, SequenceEnd::Cancelled);
  EXPECT_EQ(running.ended.get_future().get().end, SequenceEnd::Cancelled);
  scheduler.cancel(queued_id);  // already ended: ignored
  scheduler.cancel(12345);      // unknown: ignored
  EXPECT_EQ(scheduler.stats().running, 0);
  EXPECT_EQ(scheduler.stats().queued, 0);
}

TEST_F(SequentialSchedulerTest, AFullQueueThrowsQueueFull) {
  SchedulerOptions options;
  options.slots = 1;
  options.max_queue = 1;
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(),
                                options);
  std::vector<std::unique_ptr<Recorder>> recs;
  SequenceRequest endless = request("Once upon a time", -1);
  endless.stop_at_end_of_generation = false;
  bool refused = false;
  for (int i = 0; i < 4 && !refused; ++i) {
    recs.push_back(std::make_unique<Recorder>());
    try {
      scheduler.submit(endless, recs.back()->callbacks());
    } catch (const QueueFull&) {
      refused = true;
      recs.pop_back();
    }
  }
  EXPECT_TRUE(refused);
  scheduler.shutdown(/*drain=*/false);
  for (auto& r : recs) EXPECT_EQ(r->ended.get_future().get().end, SequenceEnd::Cancelled);
}

TEST_F(SequentialSchedulerTest, ShutdownWithDrainFinishesEverySequence) {
  SchedulerOptions options;
  options.slots = 2;
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(),
                                options);
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < 5; ++i) {
    recs.push_back(std::make_unique<Recorder>());
    scheduler.submit(request("Lily", 6, i), recs.back()->callbacks());
  }
  scheduler.shutdown(/*drain=*/true);
  for (auto& r : recs) {
    const SequenceEnd end = r->ended.get_future().get().end;
    EXPECT_TRUE(end == SequenceEnd::MaxTokens || end == SequenceEnd::EndOfGeneration);
  }
  EXPECT_THROW(scheduler.submit(request("Lily", 6), {}), Error);
}

TEST_F(SequentialSchedulerTest, RejectsPromptsThatCannotRun) {
  SchedulerOptions options;
  options.n_ctx = 8;
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(),
                                options);
  SequenceRequest empty;
  EXPECT_THROW(scheduler.submit(empty, {}), Error);
  SequenceRequest outside;
  outside.prompt = {1, session_->config().n_vocab};
  EXPECT_THROW(scheduler.submit(outside, {}), Error);
  SequenceRequest too_long;
  too_long.prompt.assign(8, 1);
  EXPECT_THROW(scheduler.submit(too_long, {}), Error);
}

TEST_F(SequentialSchedulerTest, ASequenceEndsWhenTheContextIsFull) {
  SchedulerOptions options;
  options.n_ctx = 12;
  SequentialScheduler scheduler(session_->transformer_for_scheduler(), &session_->tokenizer(),
                                options);
  Recorder rec;
  SequenceRequest r = request("Once upon a time", -1);
  r.stop_at_end_of_generation = false;
  scheduler.submit(r, rec.callbacks());
  const SequenceSummary s = rec.ended.get_future().get();
  EXPECT_EQ(s.end, SequenceEnd::ContextFull);
  EXPECT_EQ(s.prompt_tokens + s.generated_tokens, 12);
}

}  // namespace
}  // namespace torchless
