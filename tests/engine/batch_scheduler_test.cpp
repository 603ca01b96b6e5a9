// BatchScheduler on stories260K (CPU): greedy tokens equal Session::generate's while several
// requests share passes (long prompts prefilled in chunks), prefix-cache hits give the same
// logits (through logprobs and top probabilities) as recomputation, cancel frees blocks, a full
// queue throws QueueFull, shutdown drains or cancels.
#include "torchless/engine/batch_scheduler.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

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

std::unique_ptr<Session> stories_session() {
  SessionOptions o;
  o.model_path = stories_path();
  o.backend = "cpu";
  o.n_ctx = 160;
  o.kv_dtype = DType::F16;
  return std::make_unique<Session>(o);
}

// What one request reported, filled on the scheduler's thread.
struct Outcome {
  std::vector<SequenceToken> tokens;
  SequenceSummary summary;
  bool ended = false;
};

class Collector {
 public:
  SequenceCallbacks callbacks(Outcome& out, int stop_after = -1) {
    SequenceCallbacks cb;
    cb.on_token = [&out, stop_after, this](const SequenceToken& t) {
      std::lock_guard lock(mutex_);
      out.tokens.push_back(t);
      ++tokens_seen_;
      changed_.notify_all();
      return stop_after < 0 || static_cast<int>(out.tokens.size()) < stop_after;
    };
    cb.on_end = [&out, this](const SequenceSummary& s) {
      std::lock_guard lock(mutex_);
      out.summary = s;
      out.ended = true;
      changed_.notify_all();
    };
    return cb;
  }
  void wait_until(const std::function<bool()>& done) {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(changed_.wait_for(lock, std::chrono::seconds(120), done)) << "timed out";
  }
  int tokens_seen() {
    std::lock_guard lock(mutex_);
    return tokens_seen_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int tokens_seen_ = 0;
};

SequenceRequest greedy_request(std::vector<int32_t> prompt, int max_tokens) {
  SequenceRequest r;
  r.prompt = std::move(prompt);
  r.sampling = SamplerOptions::greedy();
  r.max_tokens = max_tokens;
  return r;
}

const std::vector<std::string> kPrompts = {
    "Once upon a time",
    "Lily wanted to play with her ball in the park, but",
    "The little dog ran to the big red barn and saw a cat. The cat was sleeping in the sun. The "
    "dog said",
    "Tom",
};

TEST(BatchScheduler, GreedyTokensEqualSessionGenerateWhileBatched) {
  auto session = stories_session();
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> expected;
  for (const auto& text : kPrompts) {
    session->reset();
    prompts.push_back(session->tokenize(text));
    GenerationOptions g;
    g.max_tokens = 24;
    g.sampling = SamplerOptions::greedy();
    expected.push_back(session->generate(prompts.back(), g).tokens);
  }
  SchedulerOptions o;
  o.slots = 3;  // the fourth request waits for a slot
  o.n_ctx = session->n_ctx();
  o.max_batch_tokens = 16;  // the long prompts are prefilled in chunks beside decoding ones
  BatchScheduler scheduler(session->transformer_for_scheduler(), &session->tokenizer(), o);
  Collector c;
  std::vector<Outcome> out(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    scheduler.submit(greedy_request(prompts[i], 24), c.callbacks(out[i]));
  }
  c.wait_until([&] {
    return std::all_of(out.begin(), out.end(), [](const Outcome& o) { return o.ended; });
  });
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> ids;
    for (const auto& t : out[i].tokens) ids.push_back(t.id);
    EXPECT_EQ(ids, expected[i]) << "prompt: " << kPrompts[i];
    EXPECT_EQ(out[i].summary.generated_tokens, static_cast<int>(ids.size()));
    EXPECT_EQ(out[i].summary.prompt_tokens, static_cast<int>(prompts[i].size()));
  }
  const SchedulerStats s = scheduler.stats();
  EXPECT_EQ(s.requests_finished, 4);
  EXPECT_EQ(s.running, 0);
  EXPECT_GT(s.forward_passes, 0);
  EXPECT_LE(s.last_batch_tokens, 16);
}

TEST(BatchScheduler, PrefixCacheHitGivesTheLogitsOfRecomputation) {
  auto session = stories_session();
  const auto prompt = session->tokenize(kPrompts[2]);  // over two full blocks
  ASSERT_GT(prompt.size(), 2u * kDefaultKvBlockSize);
  auto run = [&](bool prefix_cache, int times) {
    SchedulerOptions o;
    o.slots = 2;
    o.n_ctx = session->n_ctx();
    o.prefix_cache = prefix_cache;
    BatchScheduler scheduler(session->transformer_for_scheduler(), &session->tokenizer(), o);
    Collector c;
    std::vector<Outcome> out(static_cast<size_t>(times));
    for (auto& o_i : out) {  // one after the other: the later ones find the first's blocks
      SequenceRequest r = greedy_request(prompt, 8);
      r.n_probs = 5;
      scheduler.submit(r, c.callbacks(o_i));
      c.wait_until([&] { return o_i.ended; });
    }
    return out;
  };
  const auto cold = run(false, 1);
  const auto cached = run(true, 2);
  EXPECT_EQ(cached[0].summary.cached_prompt_tokens, 0);
  EXPECT_EQ(cached[1].summary.cached_prompt_tokens,
            static_cast<int>((prompt.size() - 1) / kDefaultKvBlockSize * kDefaultKvBlockSize));
  for (const Outcome* o : {&cached[0], &cached[1]}) {
    ASSERT_EQ(o->tokens.size(), cold[0].tokens.size());
    for (size_t i = 0; i < o->tokens.size(); ++i) {
      const SequenceToken& a = o->tokens[i];
      const SequenceToken& b = cold[0].tokens[i];
      EXPECT_EQ(a.id, b.id) << "token " << i;
      EXPECT_EQ(a.logprob, b.logprob) << "token " << i;
      ASSERT_EQ(a.top.size(), 5u);
      for (size_t j = 0; j < a.top.size(); ++j) {
        EXPECT_EQ(a.top[j].id, b.top[j].id);
        EXPECT_EQ(a.top[j].p, b.top[j].p);
      }
    }
  }
}

TEST(BatchScheduler, CancelEndsASequenceAndFreesItsBlocks) {
  auto session = stories_session();
  SchedulerOptions o;
  o.slots = 2;
  o.n_ctx = session->n_ctx();
  o.prefix_cache = false;
  BatchScheduler scheduler(session->transformer_for_scheduler(), &session->tokenizer(), o);
  Collector c;
  Outcome out;
  SequenceRequest r = greedy_request(session->tokenize(kPrompts[1]), -1);
  r.stop_at_end_of_generation = false;
  const uint64_t id = scheduler.submit(r, c.callbacks(out));
  c.wait_until([&] { return out.tokens.size() >= 3 || out.ended; });
  EXPECT_GT(scheduler.stats().kv_blocks_used, 0);
  scheduler.cancel(id);
  scheduler.cancel(id + 1000);  // unknown: ignored
  c.wait_until([&] { return out.ended; });
  EXPECT_EQ(out.summary.end, SequenceEnd::Cancelled);
  const SchedulerStats s = scheduler.stats();
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.running, 0);
  scheduler.cancel(id);  // already finished: ignored
}

TEST(BatchScheduler, FullQueueThrowsQueueFullAndShutdownCancelsTheRest) {
  auto session = stories_session();
  SchedulerOptions o;
  o.slots = 1;
  o.max_queue = 1;
  o.n_ctx = session->n_ctx();
  BatchScheduler scheduler(session->transformer_for_scheduler(), &session->tokenizer(), o);
  Collector c;
  std::vector<Outcome> out(2);
  SequenceRequest r = greedy_request(session->tokenize(kPrompts[0]), -1);
  r.stop_at_end_of_generation = false;
  scheduler.submit(r, c.callbacks(out[0]));
  c.wait_until([&] { return !out[0].tokens.empty(); });  // running: the slot is taken
  scheduler.submit(r, c.callbacks(out[1]));              // waits in the queue
  Outcome never;
  EXPECT_THROW(scheduler.submit(r, c.callbacks(never)), QueueFull);
  EXPECT_EQ(scheduler.stats().queued, 1);
  scheduler.shutdown(false);
  EXPECT_TRUE(out[0].ended && out[1].ended);
  EXPECT_EQ(out[0].summary.end, SequenceEnd::Cancelled);
  EXPECT_EQ(out[1].summary.end, SequenceEnd::Cancelled);
  EXPECT_FALSE(never.ended);
  EXPECT_THROW(scheduler.submit(r, c.callbacks(never)), Error);
}

TEST(BatchScheduler, DrainingShutdownFinishesEveryRequest) {
  auto session = stories_session();
  SchedulerOptions o;
  o.slots = 1;
  o.n_ctx = session->n_ctx();
  BatchScheduler scheduler(session->transformer_for_scheduler(), &session->tokenizer(), o);
  Collector c;
  std::vector<Outcome> out(3);
  for (auto& each : out) {
    SequenceRequest r = greedy_request(session->tokenize(kPrompts[3]), 4);
    r.stop_at_end_of_generation = false;
    scheduler.submit(r, c.callbacks(each));
  }
  scheduler.shutdown(true);
  for (const auto& each : out) {
    EXPECT_TRUE(each.ended);
    EXPECT_EQ(each.summary.end, SequenceEnd::MaxTokens);
    EXPECT_EQ(each.tokens.size(), 4u);
  }
}

TEST(BatchScheduler, StopsWhenOnTokenReturnsFalseAndRejectsBadRequests) {
  auto session = stories_session();
  SchedulerOptions o;
  o.n_ctx = session->n_ctx();
  BatchScheduler scheduler(session->transformer_for_scheduler(), &session->tokenizer(), o);
  Collector c;
  Outcome out;
  SequenceRequest r = greedy_request(session->tokenize(kPrompts[0]), 50);
  r.stop_at_end_of_generation = false;
  scheduler.submit(r, c.callbacks(out, 2));
  c.wait_until([&] { return out.ended; });
  EXPECT_EQ(out.summary.end, SequenceEnd::Stopped);
  EXPECT_EQ(out.tokens.size(), 2u);

  Outcome unused;
  EXPECT_THROW(scheduler.submit(greedy_request({}, 1), c.callbacks(unused)), Error);
  EXPECT_THROW(scheduler.submit(greedy_request({1, 100000}, 1), c.callbacks(unused)), Error);
  EXPECT_THROW(
      scheduler.submit(greedy_request(std::vector<int32_t>(160, 1), 1), c.callbacks(unused)),
      Error);
}

}  // namespace
}  // namespace torchless
