#include "torchless/engine/sequential_scheduler.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include "torchless/core/error.h"
#include "torchless/engine/session.h"

namespace torchless {
namespace {

// The chosen token's log-probability and the n most likely tokens, all under the softmax of the
// raw logits (before penalties, temperature or truncation), as OpenAI's logprobs report them.
SequenceToken describe_token(int32_t id, std::span<const float> logits, int n_probs) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double total = 0;
  for (const float l : logits) total += std::exp(static_cast<double>(l - max_logit));
  const double log_total = std::log(total);
  SequenceToken token;
  token.id = id;
  const auto logprob = [&](int32_t i) {
    return static_cast<double>(logits[static_cast<size_t>(i)] - max_logit) - log_total;
  };
  token.logprob = static_cast<float>(logprob(id));
  if (n_probs <= 0) return token;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t keep = std::min(ids.size(), static_cast<size_t>(n_probs));
  std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(keep), ids.end(),
                    [&](int32_t a, int32_t b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la > lb || (la == lb && a < b);
                    });
  token.top.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    token.top.push_back({ids[i], static_cast<float>(std::exp(logprob(ids[i])))});
  }
  return token;
}

}  // namespace

int resolve_scheduler_context(int requested, const ModelConfig& config) {
  if (requested < 0) fail("context length must be positive, got {}", requested);
  if (requested > 0) return requested;
  if (config.n_ctx_train > 0) return std::min(config.n_ctx_train, kDefaultMaxContext);
  return kDefaultMaxContext;
}

SequentialScheduler::SequentialScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                                         const SchedulerOptions& options)
    : transformer_(transformer),
      tokenizer_(tokenizer),
      options_(options),
      n_ctx_(resolve_scheduler_context(options.n_ctx, transformer.config())) {
  if (options.slots < 1) fail("a scheduler needs at least one slot, got {}", options.slots);
  if (options.max_queue < 0) fail("the queue length cannot be negative ({})", options.max_queue);
  if (options.kv_dtype != DType::F32 && options.kv_dtype != DType::F16) {
    fail("the sequential scheduler keeps its KV cache in F32 or F16");
  }
  slots_.resize(static_cast<size_t>(options.slots));
  for (Slot& slot : slots_) {
    slot.cache = std::make_unique<KvCache>(transformer.backend(), transformer.config(), n_ctx_,
                                           options.kv_dtype);
  }
  running_ids_.assign(slots_.size(), 0);
  stats_.slots = options.slots;
  stats_.max_queue = options.max_queue;
  // One "block" per slot: each slot's cache is one block of n_ctx positions.
  stats_.kv_blocks_total = options.slots;
  thread_ = std::thread([this] { run(); });
}

SequentialScheduler::~SequentialScheduler() {
  shutdown(false);
}

uint64_t SequentialScheduler::submit(SequenceRequest request, SequenceCallbacks callbacks) {
  validate_request(request, transformer_.config().n_vocab, n_ctx_, tokenizer_ != nullptr);
  std::lock_guard lock(mutex_);
  if (!accepting_) fail("the scheduler is shutting down");
  if (queue_.size() >= static_cast<size_t>(options_.max_queue)) {
    const bool slot_free = std::count(running_ids_.begin(), running_ids_.end(), 0u) >
                           static_cast<ptrdiff_t>(queue_.size());
    if (!slot_free) {
      throw QueueFull(
          fmt::format("all {} slots are busy and {} requests wait", slots_.size(), queue_.size()));
    }
  }
  auto job = std::make_unique<Job>();
  job->id = next_id_++;
  job->request = std::move(request);
  job->callbacks = std::move(callbacks);
  const uint64_t id = job->id;
  queue_.push_back(std::move(job));
  ++stats_.requests_accepted;
  wake_.notify_all();
  return id;
}

void SequentialScheduler::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  const bool running =
      std::find(running_ids_.begin(), running_ids_.end(), id) != running_ids_.end();
  const bool queued =
      std::any_of(queue_.begin(), queue_.end(), [&](const auto& job) { return job->id == id; });
  if (id == 0 || (!running && !queued)) return;
  cancelled_.insert(id);
  wake_.notify_all();
}

SchedulerStats SequentialScheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats s = stats_;
  s.running = static_cast<int>(running_ids_.size()) -
              static_cast<int>(std::count(running_ids_.begin(), running_ids_.end(), 0u));
  s.queued = static_cast<int>(queue_.size());
  s.kv_blocks_used = s.running;
  return s;
}

void SequentialScheduler::shutdown(bool drain) {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    if (!drain) {
      for (const auto& job : queue_) cancelled_.insert(job->id);
      for (const uint64_t id : running_ids_) {
        if (id != 0) cancelled_.insert(id);
      }
    }
    stopping_ = true;
    wake_.notify_all();
  }
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return thread_done_; });
  lock.unlock();
  std::lock_guard join_lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

bool SequentialScheduler::has_work_locked() const {
  return !queue_.empty() || !cancelled_.empty() ||
         std::any_of(running_ids_.begin(), running_ids_.end(), [](uint64_t id) { return id != 0; });
}

std::vector<std::unique_ptr<SequentialScheduler::Job>>
SequentialScheduler::take_cancelled_locked() {
  std::vector<std::unique_ptr<Job>> out;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (cancelled_.count((*it)->id) != 0) {
      cancelled_.erase((*it)->id);
      out.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void SequentialScheduler::fill_slots_locked() {
  for (size_t i = 0; i < slots_.size() && !queue_.empty(); ++i) {
    if (running_ids_[i] != 0) continue;
    Slot& slot = slots_[i];
    slot.job = std::move(queue_.front());
    queue_.pop_front();
    running_ids_[i] = slot.job->id;
    slot.sampler = std::make_unique<Sampler>(slot.job->request.sampling);
    slot.tokens = slot.job->request.prompt;
    slot.tokens.reserve(static_cast<size_t>(n_ctx_));
    slot.generated = 0;
    slot.prefilled = false;
  }
}

void SequentialScheduler::run() {
  while (true) {
    std::vector<std::unique_ptr<Job>> cancelled_jobs;
    std::vector<size_t> cancelled_slots;
    Slot* next = nullptr;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || has_work_locked(); });
      cancelled_jobs = take_cancelled_locked();
      stats_.requests_finished += static_cast<int64_t>(cancelled_jobs.size());
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (running_ids_[i] != 0 && cancelled_.count(running_ids_[i]) != 0) {
          cancelled_slots.push_back(i);
        }
      }
      if (cancelled_slots.empty()) fill_slots_locked();
      if (cancelled_jobs.empty() && cancelled_slots.empty()) {
        for (size_t k = 0; k < slots_.size(); ++k) {
          const size_t i = (next_slot_ + k) % slots_.size();
          if (running_ids_[i] != 0) {
            next = &slots_[i];
            next_slot_ = i + 1;
            break;
          }
        }
        if (next == nullptr) {
          cancelled_.clear();  // ids that ended before their cancellation was seen
          if (stopping_ && queue_.empty()) break;
          continue;
        }
      }
    }
    for (auto& job : cancelled_jobs) {
      SequenceSummary summary;
      summary.end = SequenceEnd::Cancelled;
      summary.prompt_tokens = static_cast<int>(job->request.prompt.size());
      end_job(*job, summary);
    }
    for (const size_t i : cancelled_slots) finish(slots_[i], SequenceEnd::Cancelled);
    if (next != nullptr) step(*next);
  }
  std::lock_guard lock(mutex_);
  thread_done_ = true;
  idle_.notify_all();
}

void SequentialScheduler::end_job(Job& job, const SequenceSummary& summary) {
  if (!job.callbacks.on_end) return;
  try {
    job.callbacks.on_end(summary);
  } catch (const std::exception&) {
    // A failing callback must not take the scheduler's thread (and every other request) down.
  }
}

// The slot is free and the counters are up to date before on_end runs, so that a client that
// waits for its end sees the scheduler's stats without its request.
void SequentialScheduler::finish(Slot& slot, SequenceEnd end, std::string error) {
  SequenceSummary summary;
  summary.end = end;
  summary.prompt_tokens = static_cast<int>(slot.job->request.prompt.size());
  summary.generated_tokens = slot.generated;
  summary.error = std::move(error);
  std::unique_ptr<Job> job;
  {
    std::lock_guard lock(mutex_);
    const size_t index = static_cast<size_t>(&slot - slots_.data());
    cancelled_.erase(running_ids_[index]);
    running_ids_[index] = 0;
    job = std::move(slot.job);
    slot.sampler.reset();
    slot.constraint.reset();
    ++stats_.requests_finished;
  }
  end_job(*job, summary);
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
  {
    std::lock_guard lock(mutex_);
    ++stats_.forward_passes;
    stats_.last_batch_tokens = batch;
    ++stats_.generated_tokens;
    if (slot.generated == 1) stats_.prompt_tokens += batch;
  }
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
  if (slot.tokens.size() >= static_cast<size_t>(n_ctx_)) {
    return finish(slot, SequenceEnd::ContextFull);
  }
}

}  // namespace torchless
