#include "torchless/engine/scheduler_factory.h"

#include "torchless/engine/batch_scheduler.h"
#include "torchless/engine/sequential_scheduler.h"

namespace torchless {

// Continuous batching where the backend has paged attention; elsewhere the sequential
// scheduler, which works on every backend.
std::unique_ptr<Scheduler> make_scheduler(Transformer& transformer, const Tokenizer* tokenizer,
                                          const SchedulerOptions& options) {
  if (transformer.backend().supports_paged_attention()) {
    return std::make_unique<BatchScheduler>(transformer, tokenizer, options);
  }
  return std::make_unique<SequentialScheduler>(transformer, tokenizer, options);
}

}  // namespace torchless
