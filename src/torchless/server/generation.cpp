#include "torchless/server/generation.h"

#include <cmath>

namespace torchless::server {

using Clock = std::chrono::steady_clock;

Generation::Generation(const Tokenizer& tokenizer, std::vector<std::string> stops, int n_logprobs,
                       Metrics& metrics)
    : tokenizer_(tokenizer),
      decoder_(tokenizer),
      stops_(std::move(stops)),
      n_logprobs_(n_logprobs),
      metrics_(metrics),
      last_event_(Clock::now()) {}

SequenceCallbacks Generation::callbacks() {
  auto self = shared_from_this();
  return {[self](const SequenceToken& token) { return self->on_token(token); },
          [self](const SequenceSummary& summary) { self->on_end(summary); }};
}

bool Generation::on_token(const SequenceToken& token) {
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - last_event_).count();
  if (first_token_) {
    metrics_.observe_time_to_first_token(seconds);
  } else {
    metrics_.observe_time_per_token(seconds);
  }
  first_token_ = false;
  last_event_ = now;
  if (tokenizer_.is_end_of_generation(token.id)) return !abandoned_;
  const std::string text = stops_.feed(decoder_.feed(token.id));
  std::lock_guard lock(mutex_);
  pending_.text += text;
  if (n_logprobs_ >= 0) {
    TokenLogprob entry{tokenizer_.token_to_piece(token.id), token.logprob, {}};
    for (size_t i = 0; i < token.top.size() && i < static_cast<size_t>(n_logprobs_); ++i) {
      entry.top.emplace_back(tokenizer_.token_to_piece(token.top[i].id),
                             std::log(static_cast<double>(token.top[i].p)));
    }
    pending_.logprobs.push_back(std::move(entry));
  }
  stop_string_ = stops_.stopped();
  arrived_.notify_all();
  return !stop_string_ && !abandoned_;
}

void Generation::on_end(const SequenceSummary& summary) {
  std::string tail;
  if (!stops_.stopped()) {
    tail = stops_.feed(decoder_.flush());
    tail += stops_.flush();
  }
  std::lock_guard lock(mutex_);
  pending_.text += tail;
  pending_.ended = true;
  pending_.summary = summary;
  switch (summary.end) {
    case SequenceEnd::EndOfGeneration:
    case SequenceEnd::Completed:
      pending_.finish_reason = "stop";
      break;
    case SequenceEnd::MaxTokens:
    case SequenceEnd::ContextFull:
      pending_.finish_reason = "length";
      break;
    case SequenceEnd::Stopped:
      pending_.finish_reason = stop_string_ ? "stop" : "";
      break;
    case SequenceEnd::Cancelled:
    case SequenceEnd::Failed:
      pending_.finish_reason = "";
      break;
  }
  arrived_.notify_all();
}

Generation::Update Generation::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  arrived_.wait_for(lock, timeout, [&] {
    return pending_.ended || !pending_.text.empty() || !pending_.logprobs.empty();
  });
  Update out = std::move(pending_);
  pending_ = Update{};
  if (out.ended) {  // the end stays visible to later calls
    pending_.ended = true;
    pending_.summary = out.summary;
    pending_.finish_reason = out.finish_reason;
  }
  return out;
}

}  // namespace torchless::server
