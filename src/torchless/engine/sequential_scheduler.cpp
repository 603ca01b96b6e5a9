#include "torchless/engine/sequential_scheduler.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "torchless/core/error.h"

namespace torchless {

SequentialScheduler::SequentialScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                                         const SchedulerOptions& options)
    : ThreadedScheduler(transformer.config(), options, tokenizer != nullptr),
      transformer_(transformer),
      tokenizer_(tokenizer) {
  if (options.kv_dtype != DType::F32 && options.kv_dtype != DType::F16) {
    fail("the sequential scheduler keeps its KV cache in F32 or F16");
  }
  slots_.resize(static_cast<size_t>(options.slots));
  for (Slot& slot : slots_) {
    slot.cache = transformer.new_kv_cache(n_ctx(), options.kv_dtype);
  }
  // One "block" per slot: each slot's cache is one block of n_ctx positions.
  update_stats([&](SchedulerStats& s) { s.kv_blocks_total = options.slots; });
  start();
}

SequentialScheduler::~SequentialScheduler() {
  shutdown(false);
}

int SequentialScheduler::busy_slots() const {
  return static_cast<int>(
      std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job.has_value(); }));
}

void SequentialScheduler::run_turn(Turn turn) {
  for (Slot& slot : slots_) {
    if (slot.job && turn.is_cancelled(slot.job->id)) finish(slot, SequenceEnd::Cancelled);
  }
  for (Request& request : turn.admitted) admit(std::move(request));
  if (!turn.admitted.empty()) {
    update_stats([used = busy_slots()](SchedulerStats& s) { s.kv_blocks_used = used; });
  }
  for (size_t k = 0; k < slots_.size(); ++k) {
    const size_t i = (next_slot_ + k) % slots_.size();
    if (slots_[i].job) {
      next_slot_ = i + 1;
      return step(slots_[i]);
    }
  }
}

void SequentialScheduler::admit(Request request) {
  const auto free =
      std::find_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.job.has_value(); });
  // ThreadedScheduler admits no more requests than there are free slots.
  Slot& slot = *free;
  slot.sampler.emplace(request.request.sampling);
  slot.tokens = request.request.prompt;
  slot.tokens.reserve(static_cast<size_t>(n_ctx()));
  slot.generated = 0;
  slot.prefilled = false;
  slot.job = std::move(request);
}

// The slot is free and the counters are up to date before on_end runs, so that a client that
// waits for its end sees the scheduler's stats without its request.
void SequentialScheduler::finish(Slot& slot, SequenceEnd end, std::string error) {
  SequenceSummary summary;
  summary.end = end;
  summary.prompt_tokens = static_cast<int>(slot.job->request.prompt.size());
  summary.generated_tokens = slot.generated;
  summary.error = std::move(error);
  const Request job = std::move(*slot.job);
  slot.job.reset();
  slot.sampler.reset();
  slot.constraint.reset();
  end_sequence(job, summary, busy_slots());
}

void SequentialScheduler::step(Slot& slot) {
  const SequenceRequest& request = slot.job->request;
  if (request.max_tokens == 0) return finish(slot, SequenceEnd::MaxTokens);
  std::span<const float> logits;
  int batch = 0;
  try {
    if (!slot.prefilled) {
      slot.constraint = make_output_constraint(request, tokenizer_, pieces_);
      slot.cache->clear();
      batch = static_cast<int>(request.prompt.size());
      logits = transformer_.forward(request.prompt, 0, *slot.cache);
      slot.prefilled = true;
    } else {
      const int32_t last = slot.tokens.back();
      batch = 1;
      logits = transformer_.forward(std::span(&last, 1), static_cast<int>(slot.tokens.size()) - 1,
                                    *slot.cache);
    }
  } catch (const std::exception& e) {
    return finish(slot, SequenceEnd::Failed, e.what());
  }
  int32_t id = -1;
  try {
    id = slot.sampler->sample(logits, slot.tokens, slot.constraint.get());
    if (slot.constraint) slot.constraint->accept(id);
  } catch (const std::exception& e) {
    return finish(slot, SequenceEnd::Failed, e.what());
  }
  const SequenceToken token = describe_token(id, logits, request.n_probs);
  slot.tokens.push_back(id);
  ++slot.generated;
  update_stats([&](SchedulerStats& s) {
    ++s.forward_passes;
    s.last_batch_tokens = batch;
    ++s.generated_tokens;
    if (slot.generated == 1) s.prompt_tokens += batch;
  });
  bool go_on = true;
  try {
    if (slot.job->callbacks.on_token) go_on = slot.job->callbacks.on_token(token);
  } catch (const std::exception& e) {
    return finish(slot, SequenceEnd::Failed, e.what());
  }
  const bool end_of_generation =
      request.stop_at_end_of_generation && tokenizer_ && tokenizer_->is_end_of_generation(id);
  if (!go_on) return finish(slot, SequenceEnd::Stopped);
  if (slot.constraint && slot.constraint->complete()) return finish(slot, SequenceEnd::Completed);
  if (end_of_generation) return finish(slot, SequenceEnd::EndOfGeneration);
  if (request.max_tokens > 0 && slot.generated >= request.max_tokens) {
    return finish(slot, SequenceEnd::MaxTokens);
  }
  if (slot.tokens.size() >= static_cast<size_t>(n_ctx())) {
    return finish(slot, SequenceEnd::ContextFull);
  }
}

}  // namespace torchless
