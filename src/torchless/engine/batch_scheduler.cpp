#include "torchless/engine/batch_scheduler.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include <fmt/format.h>

#include "torchless/engine/session.h"

namespace torchless {

struct BatchScheduler::Sequence {
  uint64_t id = 0;
  SequenceRequest request;
  SequenceCallbacks callbacks;
  Sampler sampler;
  std::unique_ptr<JsonConstraint> constraint;  // JSON output; null for text
  std::vector<int32_t> tokens;                 // prompt, then generated
  std::vector<int32_t> blocks;                 // block table
  int evaluated = 0;                           // positions whose keys and values are in the cache
  int cached_prompt = 0;
  int generated = 0;
  uint64_t prefix_entry = PrefixCache::kRoot;  // the prefix its first `registered` blocks end
  int registered = 0;
  bool ended = false;

  int pending() const { return static_cast<int>(tokens.size()) - evaluated; }
};

namespace {

int resolve_n_ctx(int requested, const ModelConfig& config) {
  if (requested < 0) fail("context length must be positive, got {}", requested);
  if (requested > 0) return requested;
  if (config.n_ctx_train > 0) return std::min(config.n_ctx_train, kDefaultMaxContext);
  return kDefaultMaxContext;
}

// logprob of `id` and the n most likely tokens under the raw softmax of the logits.
SequenceToken describe_token(int32_t id, std::span<const float> logits, int n_probs) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double total = 0;
  for (const float l : logits) total += std::exp(static_cast<double>(l - max_logit));
  const double log_total = std::log(total);
  SequenceToken token;
  token.id = id;
  token.logprob = static_cast<float>(
      static_cast<double>(logits[static_cast<size_t>(id)] - max_logit) - log_total);
  if (n_probs > 0) {
    std::vector<TokenProbability> all(logits.size());
    for (size_t i = 0; i < all.size(); ++i) {
      all[i] = {static_cast<int32_t>(i),
                static_cast<float>(std::exp(static_cast<double>(logits[i] - max_logit)) / total)};
    }
    const size_t keep = std::min(all.size(), static_cast<size_t>(n_probs));
    std::partial_sort(
        all.begin(), all.begin() + static_cast<ptrdiff_t>(keep), all.end(),
        [](const auto& a, const auto& b) { return a.p > b.p || (a.p == b.p && a.id < b.id); });
    all.resize(keep);
    token.top = std::move(all);
  }
  return token;
}

}  // namespace

BatchScheduler::BatchScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                               const SchedulerOptions& options)
    : transformer_(transformer),
      tokenizer_(tokenizer),
      options_(options),
      n_ctx_(resolve_n_ctx(options.n_ctx, transformer.config())) {
  if (options.slots < 1 || options.max_queue < 0 || options.max_batch_tokens < 1) {
    fail(
        "scheduler needs at least one slot and one token per pass (slots {}, max_queue {}, "
        "max_batch_tokens {})",
        options.slots, options.max_queue, options.max_batch_tokens);
  }
  const int per_sequence = (n_ctx_ + kDefaultKvBlockSize - 1) / kDefaultKvBlockSize;
  // One spare block per slot: a block the prefix cache keeps for a prefix that a running
  // sequence continues (but computed itself) cannot be evicted while that sequence runs.
  cache_ = std::make_unique<PagedKvCache>(transformer.backend(), transformer.config(),
                                          options.slots * (per_sequence + 1), kDefaultKvBlockSize,
                                          options.kv_dtype);
  if (options.prefix_cache) prefix_ = std::make_unique<PrefixCache>(*cache_);
  stats_.slots = options.slots;
  stats_.max_queue = options.max_queue;
  stats_.kv_blocks_total = cache_->n_blocks();
  thread_ = std::thread([this] { run(); });
}

BatchScheduler::~BatchScheduler() {
  shutdown(false);
}

uint64_t BatchScheduler::submit(SequenceRequest request, SequenceCallbacks callbacks) {
  validate_request(request, transformer_.config().n_vocab, n_ctx_, tokenizer_ != nullptr);
  std::lock_guard lock(mutex_);
  if (!accepting_) fail("the scheduler is shutting down");
  const size_t busy = queue_.size() + static_cast<size_t>(stats_.running);
  if (busy >= static_cast<size_t>(options_.slots + options_.max_queue)) {
    throw QueueFull(
        fmt::format("{} requests are waiting already (the most the queue holds)", queue_.size()));
  }
  const uint64_t id = next_id_++;
  queue_.push_back(Pending{id, std::move(request), std::move(callbacks)});
  live_.insert(id);
  ++stats_.requests_accepted;
  stats_.queued = static_cast<int>(queue_.size());
  wake_.notify_one();
  return id;
}

void BatchScheduler::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  if (live_.contains(id)) {
    cancelled_.insert(id);
    wake_.notify_one();
  }
}

SchedulerStats BatchScheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void BatchScheduler::shutdown(bool drain) {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    stopping_ = true;
    if (!drain) cancel_all_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool BatchScheduler::has_work() const {
  return stopping_ || !queue_.empty() || !cancelled_.empty() || cancel_all_ || !running_.empty();
}

void BatchScheduler::run() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return has_work(); });
      if (stopping_ && queue_.empty() && running_.empty()) break;
    }
    apply_cancellations();
    admit();
    if (running_.empty()) continue;
    Plan plan = plan_pass();
    if (!plan.tokens.empty()) run_pass(plan);
    remove_finished();
  }
}

void BatchScheduler::apply_cancellations() {
  std::vector<Pending> dropped;
  std::unordered_set<uint64_t> ids;
  bool all = false;
  {
    std::lock_guard lock(mutex_);
    ids.swap(cancelled_);
    all = cancel_all_;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (all || ids.contains(it->id)) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    stats_.queued = static_cast<int>(queue_.size());
  }
  for (Pending& p : dropped) {
    {
      std::lock_guard lock(mutex_);
      live_.erase(p.id);
      ++stats_.requests_finished;
    }
    SequenceSummary summary;
    summary.end = SequenceEnd::Cancelled;
    summary.prompt_tokens = static_cast<int>(p.request.prompt.size());
    if (p.callbacks.on_end) {
      try {
        p.callbacks.on_end(summary);
      } catch (const std::exception&) {
        // As in finish().
      }
    }
  }
  for (auto& seq : running_) {
    if (!seq->ended && (all || ids.contains(seq->id))) finish(*seq, SequenceEnd::Cancelled);
  }
  remove_finished();
}

void BatchScheduler::admit() {
  std::vector<Sequence*> admitted;
  {
    std::lock_guard lock(mutex_);
    while (running_.size() < static_cast<size_t>(options_.slots) && !queue_.empty()) {
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      auto seq = std::make_unique<Sequence>();
      seq->id = p.id;
      seq->sampler = Sampler(p.request.sampling);
      seq->tokens = p.request.prompt;
      seq->request = std::move(p.request);
      seq->callbacks = std::move(p.callbacks);
      stats_.prompt_tokens += static_cast<int64_t>(seq->tokens.size());
      admitted.push_back(seq.get());
      running_.push_back(std::move(seq));
    }
    stats_.queued = static_cast<int>(queue_.size());
    stats_.running = static_cast<int>(running_.size());
  }
  for (Sequence* seq : admitted) {
    seq->constraint = make_output_constraint(seq->request, tokenizer_, pieces_);
    reuse_prefix(*seq);
  }
  std::lock_guard lock(mutex_);
  for (Sequence* seq : admitted) stats_.cached_prompt_tokens += seq->cached_prompt;
  stats_.kv_blocks_used = cache_->used_blocks();
}

// Takes the cached blocks of the prompt's longest cached prefix of full blocks, keeping at
// least its last token to evaluate (its logits give the first generated token).
void BatchScheduler::reuse_prefix(Sequence& seq) {
  if (!prefix_) return;
  const int bs = cache_->block_size();
  const int reusable = (static_cast<int>(seq.tokens.size()) - 1) / bs;
  for (int b = 0; b < reusable; ++b) {
    const auto hit = prefix_->find(
        seq.prefix_entry,
        std::span(seq.tokens).subspan(static_cast<size_t>(b * bs), static_cast<size_t>(bs)));
    if (!hit) break;
    cache_->retain(hit->block);
    seq.blocks.push_back(hit->block);
    seq.prefix_entry = hit->entry;
    seq.registered = b + 1;
    seq.evaluated = (b + 1) * bs;
  }
  seq.cached_prompt = seq.evaluated;
}

std::optional<int32_t> BatchScheduler::allocate_block() {
  while (true) {
    if (auto block = cache_->allocate()) return block;
    if (!prefix_ || !prefix_->evict_one()) return std::nullopt;
  }
}

bool BatchScheduler::ensure_blocks(Sequence& seq, int positions) {
  const int bs = cache_->block_size();
  while (static_cast<int>(seq.blocks.size()) * bs < positions) {
    const auto block = allocate_block();
    if (!block) return false;
    seq.blocks.push_back(*block);
  }
  return true;
}

// Decoding sequences first (one token each), then prompt chunks in the room that is left.
BatchScheduler::Plan BatchScheduler::plan_pass() {
  std::vector<Sequence*> order;
  for (auto& seq : running_) {
    if (!seq->ended && seq->pending() == 1) order.push_back(seq.get());
  }
  for (auto& seq : running_) {
    if (!seq->ended && seq->pending() > 1) order.push_back(seq.get());
  }
  Plan plan;
  int budget = options_.max_batch_tokens;
  for (Sequence* seq : order) {
    if (budget == 0) break;
    const int take = std::min(seq->pending(), budget);
    if (!ensure_blocks(*seq, seq->evaluated + take)) {
      finish(
          *seq, SequenceEnd::Failed,
          fmt::format("the KV cache has no free block ({} blocks in use)", cache_->used_blocks()));
      continue;
    }
    const auto s = static_cast<int32_t>(plan.tables.size());
    plan.tables.push_back(seq->blocks);
    for (int i = 0; i < take; ++i) {
      plan.tokens.push_back(seq->tokens[static_cast<size_t>(seq->evaluated + i)]);
      plan.sequences.push_back(s);
      plan.positions.push_back(seq->evaluated + i);
    }
    if (take == seq->pending()) {
      plan.logit_rows.push_back(static_cast<int32_t>(plan.tokens.size()) - 1);
      plan.logit_owners.push_back(seq);
    }
    plan.advanced.emplace_back(seq, take);
    budget -= take;
  }
  return plan;
}

void BatchScheduler::run_pass(Plan& plan) {
  TokenBatch batch;
  batch.tokens = plan.tokens;
  batch.sequences = plan.sequences;
  batch.positions = plan.positions;
  batch.block_tables = plan.tables;
  batch.logit_rows = plan.logit_rows;
  std::span<const float> logits;
  try {
    logits = transformer_.forward_batch(batch, *cache_);
  } catch (const std::exception& e) {
    for (auto& [seq, take] : plan.advanced) {
      if (!seq->ended) finish(*seq, SequenceEnd::Failed, e.what());
    }
    return;
  }
  for (auto& [seq, take] : plan.advanced) {
    seq->evaluated += take;
    register_blocks(*seq);
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.forward_passes;
    stats_.last_batch_tokens = static_cast<int>(plan.tokens.size());
  }
  const auto n_vocab = static_cast<size_t>(transformer_.config().n_vocab);
  for (size_t i = 0; i < plan.logit_owners.size(); ++i) {
    Sequence& seq = *plan.logit_owners[i];
    if (!seq.ended) emit_token(seq, logits.subspan(i * n_vocab, n_vocab));
  }
  std::lock_guard lock(mutex_);
  stats_.kv_blocks_used = cache_->used_blocks();
}

void BatchScheduler::register_blocks(Sequence& seq) {
  if (!prefix_) return;
  const int bs = cache_->block_size();
  while ((seq.registered + 1) * bs <= seq.evaluated) {
    const auto tokens =
        std::span(seq.tokens)
            .subspan(static_cast<size_t>(seq.registered * bs), static_cast<size_t>(bs));
    seq.prefix_entry =
        prefix_->insert(seq.prefix_entry, tokens, seq.blocks[static_cast<size_t>(seq.registered)]);
    ++seq.registered;
  }
}

bool BatchScheduler::emit_token(Sequence& seq, std::span<const float> logits) {
  const SequenceRequest& r = seq.request;
  if (r.max_tokens >= 0 && seq.generated >= r.max_tokens) {
    finish(seq, SequenceEnd::MaxTokens);
    return false;
  }
  int32_t id = -1;
  try {
    id = seq.sampler.sample(logits, seq.tokens, seq.constraint.get());
    if (seq.constraint) seq.constraint->accept(id);
  } catch (const std::exception& e) {
    finish(seq, SequenceEnd::Failed, e.what());
    return false;
  }
  const SequenceToken token = describe_token(id, logits, r.n_probs);
  seq.tokens.push_back(id);
  ++seq.generated;
  {
    std::lock_guard lock(mutex_);
    ++stats_.generated_tokens;
  }
  bool go_on = true;
  try {
    go_on = !seq.callbacks.on_token || seq.callbacks.on_token(token);
  } catch (const std::exception& e) {
    finish(seq, SequenceEnd::Failed, fmt::format("on_token failed: {}", e.what()));
    return false;
  }
  if (!go_on) {
    finish(seq, SequenceEnd::Stopped);
  } else if (seq.constraint && seq.constraint->complete()) {
    finish(seq, SequenceEnd::Completed);
  } else if (r.stop_at_end_of_generation && tokenizer_ && tokenizer_->is_end_of_generation(id)) {
    finish(seq, SequenceEnd::EndOfGeneration);
  } else if (r.max_tokens >= 0 && seq.generated >= r.max_tokens) {
    finish(seq, SequenceEnd::MaxTokens);
  } else if (static_cast<int>(seq.tokens.size()) >= n_ctx_) {
    finish(seq, SequenceEnd::ContextFull);
  }
  return !seq.ended;
}

void BatchScheduler::finish(Sequence& seq, SequenceEnd end, std::string error) {
  for (const int32_t block : seq.blocks) cache_->release(block);
  seq.blocks.clear();
  seq.ended = true;
  SequenceSummary summary;
  summary.end = end;
  summary.prompt_tokens = static_cast<int>(seq.request.prompt.size());
  summary.cached_prompt_tokens = seq.cached_prompt;
  summary.generated_tokens = seq.generated;
  summary.error = std::move(error);
  {
    // Before on_end: whoever it wakes sees the slot and the blocks free already.
    std::lock_guard lock(mutex_);
    live_.erase(seq.id);
    cancelled_.erase(seq.id);
    ++stats_.requests_finished;
    --stats_.running;
    stats_.kv_blocks_used = cache_->used_blocks();
  }
  if (seq.callbacks.on_end) {
    try {
      seq.callbacks.on_end(summary);
    } catch (const std::exception&) {
      // The summary was delivered; a failing handler must not take the scheduler down.
    }
  }
}

void BatchScheduler::remove_finished() {
  std::erase_if(running_, [](const auto& seq) { return seq->ended; });
}

}  // namespace torchless
