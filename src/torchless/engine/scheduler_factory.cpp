#include "torchless/engine/scheduler_factory.h"

#include "torchless/engine/batch_scheduler.h"
#include "torchless/engine/sequential_scheduler.h"

namespace torchless {

// Continuous batching where the backend has paged attention and the paged cache holds the KV
// type (F32 or F16); elsewhere (a Q8_0 cache, a backend without paged attention) the sequential
// scheduler, which works on every backend and KV type, and on a model split over ranks.
std::unique_ptr<Scheduler> make_scheduler(Transformer& transformer, const Tokenizer* tokenizer,
                                          const SchedulerOptions& options) {
  const bool paged_kv = options.kv_dtype == DType::F32 || options.kv_dtype == DType::F16;
  if (paged_kv && transformer.tensor_parallel() == 1 &&
      transformer.backend().supports_paged_attention()) {
    return std::make_unique<BatchScheduler>(transformer, tokenizer, options);
  }
  return std::make_unique<SequentialScheduler>(transformer, tokenizer, options);
}

}  // namespace torchless
