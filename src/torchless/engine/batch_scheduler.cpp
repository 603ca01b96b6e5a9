#include "torchless/engine/batch_scheduler.h"

#include <algorithm>
#include <exception>

#include <fmt/format.h>

namespace torchless {

struct BatchScheduler::Sequence {
  Request request;  // its id, the request and the callbacks
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

BatchScheduler::BatchScheduler(Transformer& transformer, const Tokenizer* tokenizer,
                               const SchedulerOptions& options)
    : ThreadedScheduler(transformer.config(), options, tokenizer != nullptr),
      transformer_(transformer),
      tokenizer_(tokenizer) {
  if (options.max_batch_tokens < 1) {
    fail("a scheduler needs at least one token per pass, got max_batch_tokens {}",
         options.max_batch_tokens);
  }
  const int per_sequence = (n_ctx() + kDefaultKvBlockSize - 1) / kDefaultKvBlockSize;
  // One spare block per slot: a block the prefix cache keeps for a prefix that a running
  // sequence continues (but computed itself) cannot be evicted while that sequence runs.
  // Split over ranks, each rank's pools hold its KV heads; the blocks are the same on all.
  cache_ = transformer.new_paged_kv_cache(options.slots * (per_sequence + 1), kDefaultKvBlockSize,
                                          options.kv_dtype);
  if (options.prefix_cache) prefix_ = std::make_unique<PrefixCache>(*cache_);
  update_stats([&](SchedulerStats& s) { s.kv_blocks_total = cache_->n_blocks(); });
  start();
}

BatchScheduler::~BatchScheduler() {
  shutdown(false);
}

void BatchScheduler::run_turn(Turn turn) {
  for (auto& seq : running_) {
    if (!seq->ended && turn.is_cancelled(seq->request.id)) finish(*seq, SequenceEnd::Cancelled);
  }
  remove_finished();
  admit(std::move(turn.admitted));
  if (running_.empty()) return;
  Plan plan = plan_pass();
  if (!plan.tokens.empty()) run_pass(plan);
  remove_finished();
}

void BatchScheduler::admit(std::vector<Request> requests) {
  if (requests.empty()) return;
  int64_t prompt_tokens = 0, cached_prompt_tokens = 0;
  for (Request& request : requests) {
    auto seq = std::make_unique<Sequence>();
    seq->sampler = Sampler(request.request.sampling);
    seq->tokens = request.request.prompt;
    seq->request = std::move(request);
    seq->constraint = make_output_constraint(seq->request.request, tokenizer_, pieces_);
    reuse_prefix(*seq);
    prompt_tokens += static_cast<int64_t>(seq->tokens.size());
    cached_prompt_tokens += seq->cached_prompt;
    running_.push_back(std::move(seq));
  }
  update_stats([&, used = cache_->used_blocks()](SchedulerStats& s) {
    s.prompt_tokens += prompt_tokens;
    s.cached_prompt_tokens += cached_prompt_tokens;
    s.kv_blocks_used = used;
  });
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
        std::span(seq.tokens)
            .subspan(static_cast<size_t>(b) * static_cast<size_t>(bs), static_cast<size_t>(bs)));
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
  int budget = options().max_batch_tokens;
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
      plan.tokens.push_back(
          seq->tokens[static_cast<size_t>(seq->evaluated) + static_cast<size_t>(i)]);
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
  update_stats([&](SchedulerStats& s) {
    ++s.forward_passes;
    s.last_batch_tokens = static_cast<int>(plan.tokens.size());
  });
  const auto n_vocab = static_cast<size_t>(transformer_.config().n_vocab);
  for (size_t i = 0; i < plan.logit_owners.size(); ++i) {
    Sequence& seq = *plan.logit_owners[i];
    if (!seq.ended) emit_token(seq, logits.subspan(i * n_vocab, n_vocab));
  }
  update_stats([used = cache_->used_blocks()](SchedulerStats& s) { s.kv_blocks_used = used; });
}

void BatchScheduler::register_blocks(Sequence& seq) {
  if (!prefix_) return;
  const int bs = cache_->block_size();
  while ((seq.registered + 1) * bs <= seq.evaluated) {
    const auto tokens = std::span(seq.tokens)
                            .subspan(static_cast<size_t>(seq.registered) * static_cast<size_t>(bs),
                                     static_cast<size_t>(bs));
    seq.prefix_entry =
        prefix_->insert(seq.prefix_entry, tokens, seq.blocks[static_cast<size_t>(seq.registered)]);
    ++seq.registered;
  }
}

bool BatchScheduler::emit_token(Sequence& seq, std::span<const float> logits) {
  const SequenceRequest& r = seq.request.request;
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
  update_stats([](SchedulerStats& s) { ++s.generated_tokens; });
  bool go_on = true;
  try {
    go_on = !seq.request.callbacks.on_token || seq.request.callbacks.on_token(token);
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
  } else if (static_cast<int>(seq.tokens.size()) >= n_ctx()) {
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
  summary.prompt_tokens = static_cast<int>(seq.request.request.prompt.size());
  summary.cached_prompt_tokens = seq.cached_prompt;
  summary.generated_tokens = seq.generated;
  summary.error = std::move(error);
  end_sequence(seq.request, summary, cache_->used_blocks());
}

void BatchScheduler::remove_finished() {
  std::erase_if(running_, [](const auto& seq) { return seq->ended; });
}

}  // namespace torchless
