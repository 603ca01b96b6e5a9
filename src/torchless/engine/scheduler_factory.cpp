#include "torchless/engine/scheduler_factory.h"

#include "torchless/engine/batch_scheduler.h"
#include "torchless/engine/sequential_scheduler.h"

namespace torchless {

// Continuous batching where the backend has paged attention over pools of the KV type (F32 and
// F16 wherever it has paged attention, Q8_0 on the CPU and CUDA), split over ranks or not (every
// rank's backend is of rank 0's kind); elsewhere the sequential scheduler, which works on every
// backend and KV type.
std::unique_ptr<Scheduler> make_scheduler(Transformer& transformer, const Tokenizer* tokenizer,
                                          const SchedulerOptions& options) {
  if (transformer.backend().supports_paged_kv_dtype(options.kv_dtype)) {
    return std::make_unique<BatchScheduler>(transformer, tokenizer, options);
  }
  return std::make_unique<SequentialScheduler>(transformer, tokenizer, options);
}

}  // namespace torchless
