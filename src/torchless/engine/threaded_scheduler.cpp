#include "torchless/engine/threaded_scheduler.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include <fmt/format.h>

#include "torchless/core/error.h"
#include "torchless/engine/session.h"

namespace torchless {

int resolve_scheduler_context(int requested, const ModelConfig& config) {
  if (requested < 0) fail("context length must be positive, got {}", requested);
  if (requested > 0) return requested;
  if (config.n_ctx_train > 0) return std::min(config.n_ctx_train, kDefaultMaxContext);
  return kDefaultMaxContext;
}

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
  // Most likely first; equal logits in id order, so the list is deterministic.
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

ThreadedScheduler::ThreadedScheduler(const ModelConfig& config, const SchedulerOptions& options,
                                     bool has_tokenizer)
    : options_(options),
      n_ctx_(resolve_scheduler_context(options.n_ctx, config)),
      n_vocab_(config.n_vocab),
      has_tokenizer_(has_tokenizer) {
  if (options.slots < 1) fail("a scheduler needs at least one slot, got {}", options.slots);
  if (options.max_queue < 0) fail("the queue length cannot be negative ({})", options.max_queue);
  stats_.slots = options.slots;
  stats_.max_queue = options.max_queue;
}

ThreadedScheduler::~ThreadedScheduler() {
  // Normally nothing is left to do: the implementation's destructor has stopped the loop.
  shutdown(false);
}

void ThreadedScheduler::start() {
  thread_ = std::thread([this] { loop(); });
  thread_id_ = thread_.get_id();
}

uint64_t ThreadedScheduler::submit(SequenceRequest request, SequenceCallbacks callbacks) {
  validate_request(request, n_vocab_, n_ctx_, has_tokenizer_);
  std::lock_guard lock(mutex_);
  if (!accepting_) fail("the scheduler is shutting down");
  // max_queue counts the requests that wait beyond the slots.
  const size_t busy = queue_.size() + static_cast<size_t>(running_);
  if (busy >= static_cast<size_t>(options_.slots) + static_cast<size_t>(options_.max_queue)) {
    throw QueueFull(fmt::format("all {} slots are busy and {} requests wait (the most it holds)",
                                options_.slots, queue_.size()));
  }
  const uint64_t id = next_id_++;
  queue_.push_back(Request{id, std::move(request), std::move(callbacks)});
  live_.insert(id);
  ++stats_.requests_accepted;
  wake_.notify_all();
  return id;
}

void ThreadedScheduler::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  if (!live_.contains(id)) return;
  cancelled_.insert(id);
  wake_.notify_all();
}

SchedulerStats ThreadedScheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats s = stats_;
  s.running = running_;
  s.queued = static_cast<int>(queue_.size());
  return s;
}

void ThreadedScheduler::shutdown(bool drain) {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    stopping_ = true;
    if (!drain) cancel_all_ = true;
    wake_.notify_all();
  }
  if (std::this_thread::get_id() == thread_id_) return;
  std::lock_guard join_lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

bool ThreadedScheduler::has_work_locked() const {
  return stopping_ || cancel_all_ || running_ > 0 || !queue_.empty() || !cancelled_.empty();
}

std::vector<ThreadedScheduler::Request> ThreadedScheduler::take_cancelled_locked(const Turn& turn) {
  std::vector<Request> out;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (turn.is_cancelled(it->id)) {
      live_.erase(it->id);
      ++stats_.requests_finished;
      out.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void ThreadedScheduler::loop() {
  while (true) {
    Turn turn;
    std::vector<Request> dropped;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return has_work_locked(); });
      if (stopping_ && queue_.empty() && running_ == 0) break;
      turn.cancelled.swap(cancelled_);
      turn.cancel_all = cancel_all_;
      dropped = take_cancelled_locked(turn);
      while (running_ < options_.slots && !queue_.empty()) {
        turn.admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
        ++running_;
      }
    }
    for (const Request& r : dropped) {
      SequenceSummary summary;
      summary.end = SequenceEnd::Cancelled;
      summary.prompt_tokens = static_cast<int>(r.request.prompt.size());
      call_on_end(r.callbacks, summary);
    }
    run_turn(std::move(turn));
  }
}

void ThreadedScheduler::end_sequence(const Request& request, const SequenceSummary& summary,
                                     int kv_blocks_used) {
  {
    std::lock_guard lock(mutex_);
    live_.erase(request.id);
    cancelled_.erase(request.id);
    --running_;
    ++stats_.requests_finished;
    stats_.kv_blocks_used = kv_blocks_used;
  }
  call_on_end(request.callbacks, summary);
}

void ThreadedScheduler::call_on_end(const SequenceCallbacks& callbacks,
                                    const SequenceSummary& summary) {
  if (!callbacks.on_end) return;
  try {
    callbacks.on_end(summary);
  } catch (const std::exception&) {
    // The summary was delivered; a failing handler must not take the scheduler's thread down.
  }
}

}  // namespace torchless
