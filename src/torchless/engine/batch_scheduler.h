#pragma once
// The continuous-batching Scheduler (scheduler.h): many sequences per forward pass over a paged
// KV cache. Each pass of its thread takes the next token of every running sequence and, in the
// room left under max_batch_tokens, chunks of the prompts still being prefilled, so a long
// prompt never stalls the others; new requests join as slots free up. Full prompt blocks
// already in the cache are reused (PrefixCache). A request's logits do not depend on what
// else runs where the backend keeps one reduction order per output (docs/batching.md). The
// queue, cancellation and the thread are ThreadedScheduler's.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "torchless/engine/prefix_cache.h"
#include "torchless/engine/threaded_scheduler.h"
#include "torchless/model/paged_kv_cache.h"
#include "torchless/model/transformer.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

class BatchScheduler final : public ThreadedScheduler {
 public:
  // `transformer` (and its backend) and `tokenizer` (may be null: then no token ends a
  // sequence by itself) must outlive the scheduler. The pool holds enough blocks for every
  // slot to reach n_ctx.
  BatchScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                 const SchedulerOptions& options);
  ~BatchScheduler() override;
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

 private:
  struct Sequence;
  // One pass's tokens, in batch order, and what each logits row belongs to.
  struct Plan {
    std::vector<int32_t> tokens, sequences, positions, logit_rows;
    std::vector<std::vector<int32_t>> tables;
    std::vector<Sequence*> logit_owners;
    std::vector<std::pair<Sequence*, int>> advanced;  // (sequence, tokens evaluated)
  };

  void run_turn(Turn turn) override;
  void admit(std::vector<Request> requests);
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
  std::unique_ptr<PagedKvCache> cache_;
  std::unique_ptr<PrefixCache> prefix_;
  std::shared_ptr<const TokenPieces> pieces_;       // for JSON output, built on first use
  std::vector<std::unique_ptr<Sequence>> running_;  // scheduler thread only
};

}  // namespace torchless
