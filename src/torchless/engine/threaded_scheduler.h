#pragma once
// What both schedulers (batch_scheduler.h, sequential_scheduler.h) share: accepted requests
// wait in one queue under one mutex, cancel() marks ids, shutdown() stops accepting and joins
// the scheduler's thread, and the counters of stats() live here. The thread's loop takes, each
// turn and under the lock, the cancellations and as many queued requests as there are free
// slots, ends the cancelled queued ones itself, and hands the rest to the implementation's
// run_turn(), which runs the forward passes and ends its sequences through end_sequence().
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "torchless/engine/scheduler.h"
#include "torchless/formats/model_config.h"

namespace torchless {

// The context length a scheduler gives each sequence: options.n_ctx, or the model's training
// context capped at kDefaultMaxContext when 0. Throws Error when negative.
int resolve_scheduler_context(int requested, const ModelConfig& config);

// The chosen token's log-probability and the n_probs most likely tokens, all under the softmax
// of the raw logits (before penalties, temperature or truncation), as OpenAI's logprobs report
// them.
SequenceToken describe_token(int32_t id, std::span<const float> logits, int n_probs);

class ThreadedScheduler : public Scheduler {
 public:
  ~ThreadedScheduler() override;
  ThreadedScheduler(const ThreadedScheduler&) = delete;
  ThreadedScheduler& operator=(const ThreadedScheduler&) = delete;

  uint64_t submit(SequenceRequest request, SequenceCallbacks callbacks) final;
  void cancel(uint64_t id) final;
  SchedulerStats stats() const final;
  int n_ctx() const final { return n_ctx_; }
  // From a callback (the scheduler's own thread) it returns at once; the loop ends after the
  // current turn, and the destructor joins the thread.
  void shutdown(bool drain) final;

 protected:
  struct Request {
    uint64_t id = 0;
    SequenceRequest request;
    SequenceCallbacks callbacks;
  };
  // What one turn of the loop hands to run_turn().
  struct Turn {
    std::vector<Request> admitted;           // taken from the queue into free slots, in order
    std::unordered_set<uint64_t> cancelled;  // ids cancel() was called for
    bool cancel_all = false;                 // shutdown(false): every running sequence
    bool is_cancelled(uint64_t id) const { return cancel_all || cancelled.contains(id); }
  };

  // Checks options.slots and options.max_queue (throws Error). has_tokenizer: JSON output
  // (OutputFormat::JsonObject) needs the bytes of every token.
  ThreadedScheduler(const ModelConfig& config, const SchedulerOptions& options, bool has_tokenizer);
  // The implementation's constructor ends with start(), and its destructor begins with
  // shutdown(false): the thread calls run_turn() only while the implementation exists.
  void start();

  // One turn on the scheduler's thread: end the running sequences that turn.is_cancelled()
  // with SequenceEnd::Cancelled, take turn.admitted into free slots (there are enough), and run
  // one forward pass. Called again at once while sequences run; every admitted request must end
  // through end_sequence() exactly once.
  virtual void run_turn(Turn turn) = 0;

  // A running sequence ended: frees its slot in the counts (and sets kv_blocks_used) before
  // calling on_end, so that whoever on_end wakes sees the scheduler without it. An exception
  // from on_end is swallowed: it must not take every other request down.
  void end_sequence(const Request& request, const SequenceSummary& summary, int kv_blocks_used);
  // Updates the counters the implementation keeps (tokens, passes, KV blocks) under the lock.
  template <class Update>
  void update_stats(Update&& update) {
    std::lock_guard lock(mutex_);
    update(stats_);
  }
  const SchedulerOptions& options() const { return options_; }

 private:
  void loop();
  bool has_work_locked() const;
  // Under the lock: moves the queued requests that are cancelled out of the queue.
  std::vector<Request> take_cancelled_locked(const Turn& turn);
  static void call_on_end(const SequenceCallbacks& callbacks, const SequenceSummary& summary);

  const SchedulerOptions options_;
  const int n_ctx_;
  const int n_vocab_;
  const bool has_tokenizer_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;               // under mutex_
  std::unordered_set<uint64_t> cancelled_;  // under mutex_
  std::unordered_set<uint64_t> live_;       // accepted and not ended, under mutex_
  int running_ = 0;                         // admitted and not ended, under mutex_
  SchedulerStats stats_;                    // under mutex_
  bool accepting_ = true;                   // under mutex_
  bool stopping_ = false;                   // under mutex_
  bool cancel_all_ = false;                 // under mutex_
  uint64_t next_id_ = 1;                    // under mutex_

  std::mutex join_mutex_;
  std::thread thread_;
  std::thread::id thread_id_;  // set once by start()
};

}  // namespace torchless
