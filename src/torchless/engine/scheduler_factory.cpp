#include "torchless/engine/scheduler_factory.h"

#include "torchless/engine/sequential_scheduler.h"

namespace torchless {

// The sequential scheduler works on every backend. The continuous-batching one takes over where
// the backend has paged attention, once it exists.
std::unique_ptr<Scheduler> make_scheduler(Transformer& transformer, const Tokenizer* tokenizer,
                                          const SchedulerOptions& options) {
  return std::make_unique<SequentialScheduler>(transformer, tokenizer, options);
}

}  // namespace torchless
