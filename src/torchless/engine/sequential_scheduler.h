#pragma once
// A Scheduler for any backend: each slot owns a plain KvCache, and the scheduler's thread runs
// one sequence per forward pass, taking the running slots in turn (a whole prompt, then one
// token per turn), so concurrent requests all make progress. It needs no paged attention, which
// makes it the fallback where the continuous-batching scheduler cannot run. A sequence's tokens
// do not depend on what else runs: each has its own cache and is evaluated as when alone.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "torchless/engine/scheduler.h"
#include "torchless/model/kv_cache.h"
#include "torchless/model/transformer.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

class SequentialScheduler : public Scheduler {
 public:
  // `transformer` (and `tokenizer`, which says which ids end a generation; may be null) must
  // outlive the scheduler, and nothing else may run the transformer meanwhile.
  SequentialScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                      const SchedulerOptions& options);
  ~SequentialScheduler() override;
  SequentialScheduler(const SequentialScheduler&) = delete;
  SequentialScheduler& operator=(const SequentialScheduler&) = delete;

  uint64_t submit(SequenceRequest request, SequenceCallbacks callbacks) override;
  void cancel(uint64_t id) override;
  SchedulerStats stats() const override;
  int n_ctx() const override { return n_ctx_; }
  void shutdown(bool drain) override;

 private:
  struct Job {
    uint64_t id = 0;
    SequenceRequest request;
    SequenceCallbacks callbacks;
  };
  struct Slot {
    std::unique_ptr<KvCache> cache;
    std::unique_ptr<Job> job;  // null: free
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<JsonConstraint> constraint;  // JSON output; null for text
    std::vector<int32_t> tokens;  // prompt and generated; the cache holds all but the last
    int generated = 0;
    bool prefilled = false;
  };

  void run();
  // Under the lock: ends cancelled jobs (queued or running) and moves queued jobs to free slots.
  // Returns the jobs to end with Cancelled, whose callbacks run after the lock is released.
  std::vector<std::unique_ptr<Job>> take_cancelled_locked();
  void fill_slots_locked();
  bool has_work_locked() const;
  // One forward pass for the slot (its prompt, or its last token), one sampled token.
  void step(Slot& slot);
  void finish(Slot& slot, SequenceEnd end, std::string error = {});
  static void end_job(Job& job, const SequenceSummary& summary);

  Transformer& transformer_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  int n_ctx_;
  std::vector<Slot> slots_;
  std::shared_ptr<const TokenPieces> pieces_;  // for JSON output, built on first use

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::unique_ptr<Job>> queue_;
  std::unordered_set<uint64_t> cancelled_;  // ids cancel() was called for, not yet ended
  std::vector<uint64_t> running_ids_;       // per slot, 0 when free (read by cancel())
  uint64_t next_id_ = 1;
  bool accepting_ = true;
  bool stopping_ = false;
  bool thread_done_ = false;
  SchedulerStats stats_;
  size_t next_slot_ = 0;  // round robin over the running slots
  std::mutex join_mutex_;
  std::thread thread_;
};

// The context length a scheduler gives each sequence: options.n_ctx, or the model's training
// context capped at kDefaultMaxContext when 0. Throws Error when negative.
int resolve_scheduler_context(int requested, const ModelConfig& config);

}  // namespace torchless
