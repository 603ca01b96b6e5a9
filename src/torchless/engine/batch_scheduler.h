#pragma once
// The continuous-batching Scheduler (scheduler.h): many sequences per forward pass over a paged
// KV cache. Each pass of its thread takes the next token of every running sequence and, in the
// room left under max_batch_tokens, chunks of the prompts still being prefilled, so a long
// prompt never stalls the others; new requests join as slots free up. Full prompt blocks
// already in the cache are reused (PrefixCache). A request's logits do not depend on what
// else runs where the backend keeps one reduction order per output (docs/batching.md).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "torchless/engine/prefix_cache.h"
#include "torchless/engine/scheduler.h"
#include "torchless/model/paged_kv_cache.h"
#include "torchless/model/transformer.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

class BatchScheduler final : public Scheduler {
 public:
  // `transformer` (and its backend) and `tokenizer` (may be null: then no token ends a
  // sequence by itself) must outlive the scheduler. The pool holds enough blocks for every
  // slot to reach n_ctx.
  BatchScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                 const SchedulerOptions& options);
  ~BatchScheduler() override;
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  uint64_t submit(SequenceRequest request, SequenceCallbacks callbacks) override;
  void cancel(uint64_t id) override;
  SchedulerStats stats() const override;
  int n_ctx() const override { return n_ctx_; }
  void shutdown(bool drain) override;

 private:
  struct Sequence;
  struct Pending {
    uint64_t id;
    SequenceRequest request;
    SequenceCallbacks callbacks;
  };
  // One pass's tokens, in batch order, and what each logits row belongs to.
  struct Plan {
    std::vector<int32_t> tokens, sequences, positions, logit_rows;
    std::vector<std::vector<int32_t>> tables;
    std::vector<Sequence*> logit_owners;
    std::vector<std::pair<Sequence*, int>> advanced;  // (sequence, tokens evaluated)
  };

  void run();
  bool has_work() const;  // under mutex_
  void admit();
  void apply_cancellations();
  void reuse_prefix(Sequence& seq);
  bool ensure_blocks(Sequence& seq, int positions);
  std::optional<int32_t> allocate_block();
  Plan plan_pass();
  void run_pass(Plan& plan);
  // Samples after one logits row; returns false when the sequence ended.
  bool emit_token(Sequence& seq, std::span<const float> logits);
  void register_blocks(Sequence& seq);
  void finish(Sequence& seq, SequenceEnd end, std::string error = {});
  void remove_finished();

  Transformer& transformer_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  int n_ctx_;
  std::unique_ptr<PagedKvCache> cache_;
  std::unique_ptr<PrefixCache> prefix_;
  std::shared_ptr<const TokenPieces> pieces_;  // for JSON output, built on first use

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;               // under mutex_
  std::unordered_set<uint64_t> cancelled_;  // under mutex_
  std::unordered_set<uint64_t> live_;       // accepted and not ended, under mutex_
  SchedulerStats stats_;                    // under mutex_
  bool accepting_ = true;                   // under mutex_
  bool stopping_ = false;                   // under mutex_
  bool cancel_all_ = false;                 // under mutex_
  uint64_t next_id_ = 1;                    // under mutex_

  std::vector<std::unique_ptr<Sequence>> running_;  // scheduler thread only
  std::thread thread_;
};

}  // namespace torchless
