#pragma once
// A Scheduler for any backend: each slot owns a plain KvCache, and the scheduler's thread runs
// one sequence per forward pass, taking the running slots in turn (a whole prompt, then one
// token per turn), so concurrent requests all make progress. It needs no paged attention, which
// makes it the fallback where the continuous-batching scheduler cannot run. A sequence's tokens
// do not depend on what else runs: each has its own cache and is evaluated as when alone. The
// queue, cancellation and the thread are ThreadedScheduler's.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "torchless/engine/threaded_scheduler.h"
#include "torchless/model/kv_cache.h"
#include "torchless/model/transformer.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

class SequentialScheduler final : public ThreadedScheduler {
 public:
  // `transformer` (and `tokenizer`, which says which ids end a generation; may be null) must
  // outlive the scheduler, and nothing else may run the transformer meanwhile.
  SequentialScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                      const SchedulerOptions& options);
  ~SequentialScheduler() override;
  SequentialScheduler(const SequentialScheduler&) = delete;
  SequentialScheduler& operator=(const SequentialScheduler&) = delete;

 private:
  struct Slot {
    std::unique_ptr<KvCache> cache;
    std::optional<Request> job;  // empty: free
    std::optional<Sampler> sampler;
    std::unique_ptr<JsonConstraint> constraint;  // JSON output; null for text
    std::vector<int32_t> tokens;  // prompt and generated; the cache holds all but the last
    int generated = 0;
    bool prefilled = false;
  };

  void run_turn(Turn turn) override;
  void admit(Request request);
  // One forward pass for the slot (its prompt, or its last token), one sampled token.
  void step(Slot& slot);
  void finish(Slot& slot, SequenceEnd end, std::string error = {});
  int busy_slots() const;

  Transformer& transformer_;
  const Tokenizer* tokenizer_;
  std::vector<Slot> slots_;                    // scheduler thread only
  std::shared_ptr<const TokenPieces> pieces_;  // for JSON output, built on first use
  size_t next_slot_ = 0;                       // round robin over the running slots
};

}  // namespace torchless
