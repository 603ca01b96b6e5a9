#include "torchless/server/metrics.h"

#include <fmt/format.h>

namespace torchless::server {

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  }
  ++count_;
  sum_ += value;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
  return out;
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      per_token_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::count_response(int status) {
  std::lock_guard lock(mutex_);
  ++responses_[status];
}

void Metrics::count_cancelled() {
  std::lock_guard lock(mutex_);
  ++cancelled_;
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_.observe(seconds);
}

void Metrics::observe_time_per_token(double seconds) {
  std::lock_guard lock(mutex_);
  per_token_.observe(seconds);
}

namespace {

std::string metric(const char* name, const char* type, const char* help, int64_t value) {
  return fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

std::string Metrics::render(const SchedulerStats& s) const {
  std::string out;
  out += "# HELP torchless_http_responses_total HTTP responses by status code.\n";
  out += "# TYPE torchless_http_responses_total counter\n";
  {
    std::lock_guard lock(mutex_);
    for (const auto& [status, count] : responses_) {
      out += fmt::format("torchless_http_responses_total{{code=\"{}\"}} {}\n", status, count);
    }
    out += metric("torchless_requests_cancelled_total", "counter",
                  "Generations cancelled because the client went away.",
                  static_cast<int64_t>(cancelled_));
    out += ttft_.render("torchless_time_to_first_token_seconds",
                        "Time from accepting a generation to its first token.");
    out += per_token_.render("torchless_time_per_output_token_seconds",
                             "Time between consecutive generated tokens of a request.");
  }
  out += metric("torchless_requests_accepted_total", "counter",
                "Generations accepted by the scheduler.", s.requests_accepted);
  out += metric("torchless_requests_finished_total", "counter",
                "Generations the scheduler ended (any reason).", s.requests_finished);
  out += metric("torchless_prompt_tokens_total", "counter", "Prompt tokens processed.",
                s.prompt_tokens);
  out += metric("torchless_cached_prompt_tokens_total", "counter",
                "Prompt tokens reused from the prefix cache.", s.cached_prompt_tokens);
  out += metric("torchless_generated_tokens_total", "counter", "Tokens generated.",
                s.generated_tokens);
  out +=
      metric("torchless_forward_passes_total", "counter", "Forward passes run.", s.forward_passes);
  out += metric("torchless_slots", "gauge", "Sequences that can run at once.", s.slots);
  out += metric("torchless_slots_busy", "gauge", "Sequences running now.", s.running);
  out += metric("torchless_queue_depth", "gauge", "Requests waiting for a slot.", s.queued);
  out += metric("torchless_queue_capacity", "gauge", "Requests that may wait before 503.",
                s.max_queue);
  out += metric("torchless_batch_tokens", "gauge", "Tokens in the most recent forward pass.",
                s.last_batch_tokens);
  out += metric("torchless_kv_blocks_used", "gauge", "KV cache blocks held by sequences.",
                s.kv_blocks_used);
  out += metric("torchless_kv_blocks_total", "gauge", "KV cache blocks in the pool.",
                s.kv_blocks_total);
  return out;
}

}  // namespace torchless::server
