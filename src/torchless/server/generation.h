#pragma once
// One generation as the HTTP handler sees it: the scheduler's callbacks (on its thread) turn
// token ids into UTF-8 text (the tokenizer's stream decoder), apply the stop strings and record
// logprobs and latencies; the handler's thread waits for what arrived and writes it out. A
// stop string, or a client that went away, ends the sequence by returning false from on_token.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "torchless/engine/scheduler.h"
#include "torchless/server/metrics.h"
#include "torchless/server/responses.h"
#include "torchless/server/stop_strings.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless::server {

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  // n_logprobs: < 0 records no logprobs, else the alternatives to record with each token.
  Generation(const Tokenizer& tokenizer, std::vector<std::string> stops, int n_logprobs,
             Metrics& metrics);

  // Callbacks holding this generation alive until the scheduler is done with them.
  SequenceCallbacks callbacks();

  struct Update {
    std::string text;
    std::vector<TokenLogprob> logprobs;
    bool ended = false;
    SequenceSummary summary;    // with ended
    std::string finish_reason;  // with ended: "stop", "length" or "" (cancelled, failed)
  };
  // What arrived since the last call, waiting up to `timeout` for something to arrive.
  Update wait(std::chrono::milliseconds timeout);
  // The client went away: the next token ends the sequence.
  void abandon() { abandoned_ = true; }

 private:
  bool on_token(const SequenceToken& token);
  void on_end(const SequenceSummary& summary);

  const Tokenizer& tokenizer_;
  StreamDecoder decoder_;
  StopStrings stops_;
  int n_logprobs_;
  Metrics& metrics_;
  std::chrono::steady_clock::time_point last_event_;
  bool first_token_ = true;
  std::atomic<bool> abandoned_ = false;

  std::mutex mutex_;
  std::condition_variable arrived_;
  Update pending_;
  bool stop_string_ = false;
};

}  // namespace torchless::server
