#pragma once
// Which Scheduler runs the sequences of a loaded model: the one place that chooses, so that
// `torchless serve` (and anything else serving many requests) programs only against Scheduler.
#include <memory>

#include "torchless/engine/scheduler.h"
#include "torchless/model/transformer.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

// `transformer` and `tokenizer` (which ids end a generation; may be null) must outlive the
// scheduler, and nothing else may run the transformer meanwhile.
std::unique_ptr<Scheduler> make_scheduler(Transformer& transformer, const Tokenizer* tokenizer,
                                          const SchedulerOptions& options);

}  // namespace torchless
