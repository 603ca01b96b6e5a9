#pragma once
// The contract between the serving layer (`torchless serve`) and what runs many token
// sequences on one loaded model. The serving layer speaks text and HTTP; a Scheduler speaks
// token ids: it takes a prompt, samples tokens with the request's own sampler, and reports each
// token and, once, the end. Text, stop strings and chat templates stay above it: a stop string
// ends a sequence by returning false from on_token.
//
// Two implementations: a continuous-batching one (many sequences per forward pass over a paged
// KV cache, for backends with paged attention) and a sequential one (one sequence at a time
// over the plain KV cache, for any backend). Both run their own thread; callbacks come from it.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "torchless/core/dtype.h"
#include "torchless/core/error.h"
#include "torchless/engine/json_constraint.h"
#include "torchless/engine/output_format.h"
#include "torchless/engine/sampler.h"

namespace torchless {

struct SequenceRequest {
  std::vector<int32_t> prompt;            // token ids, BOS included; not empty
  SamplerOptions sampling;                // one Sampler per request, seeded with sampling.seed
  int max_tokens = -1;                    // < 0: until end of generation or the end of the context
  bool stop_at_end_of_generation = true;  // false: ignore EOS/EOT (--ignore-eos)
  int n_probs = 0;  // > 0: the n most likely tokens (raw softmax) with each generated token
  OutputFormat format = OutputFormat::Text;  // JsonObject needs the scheduler's tokenizer
};

struct SequenceToken {
  int32_t id = -1;
  float logprob = 0;  // natural log of id's probability under the raw softmax of the logits
  std::vector<TokenProbability> top;  // n_probs entries, most likely first
};

enum class SequenceEnd {
  EndOfGeneration,  // the model emitted EOS/EOT (that token was reported through on_token)
  Completed,        // the constrained output is complete (OutputFormat::JsonObject)
  MaxTokens,        // generated max_tokens
  ContextFull,      // prompt + generated tokens reached n_ctx
  Stopped,          // on_token returned false (a stop string, a closed stream)
  Cancelled,        // cancel() or shutdown()
  Failed,           // an Error while running; `error` says what
};

struct SequenceSummary {
  SequenceEnd end = SequenceEnd::Failed;
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;  // prompt tokens reused from the prefix cache, not recomputed
  int generated_tokens = 0;
  std::string error;  // only with SequenceEnd::Failed
};

struct SequenceCallbacks {
  // Each generated token, in order. Return false to end the sequence (SequenceEnd::Stopped).
  // Runs on the scheduler's thread: it must not block, or it holds up every other sequence.
  std::function<bool(const SequenceToken&)> on_token;
  // Exactly once per accepted request, after its last on_token, on the scheduler's thread.
  std::function<void(const SequenceSummary&)> on_end;
};

struct SchedulerStats {
  int slots = 0;      // sequences that can run at once
  int running = 0;    // sequences in a slot now
  int queued = 0;     // accepted, waiting for a slot
  int max_queue = 0;  // submit() throws QueueFull beyond this many queued
  int64_t requests_accepted = 0;
  int64_t requests_finished = 0;  // on_end called
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t forward_passes = 0;
  int last_batch_tokens = 0;  // tokens in the most recent forward pass
  int kv_blocks_used = 0;     // paged KV cache blocks held by sequences (and the prefix cache)
  int kv_blocks_total = 0;
};

struct SchedulerOptions {
  int slots = 4;       // --parallel
  int max_queue = 64;  // waiting requests beyond the slots; more get QueueFull (HTTP 503)
  int n_ctx = 0;       // per sequence; 0: the model's context, at most kDefaultMaxContext
  DType kv_dtype = DType::F16;
  int max_batch_tokens = 512;  // tokens per forward pass; long prompts are prefilled in chunks
  bool prefix_cache = true;    // reuse KV blocks of prompts that share a prefix
};

// submit() when max_queue requests already wait: the server answers 503 with Retry-After.
class QueueFull : public Error {
 public:
  using Error::Error;
};

// The checks submit() makes of every implementation, one set of messages: throws Error for an
// empty prompt, a negative n_probs, a token id outside [0, n_vocab), or a prompt that leaves no
// room to generate in n_ctx, or a JSON format without a tokenizer (`has_tokenizer`).
void validate_request(const SequenceRequest& request, int n_vocab, int n_ctx, bool has_tokenizer);

// The constraint of a request's format: null for text, else a JsonConstraint over the
// tokenizer's pieces. `pieces` is the scheduler's cache of them, built by the first JSON
// request (one pass over the vocabulary) and shared by all later ones.
std::unique_ptr<JsonConstraint> make_output_constraint(const SequenceRequest& request,
                                                       const Tokenizer* tokenizer,
                                                       std::shared_ptr<const TokenPieces>& pieces);

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Validates the request (throws Error: empty prompt, a token id outside the vocabulary, a
  // prompt that leaves no room to generate in n_ctx), throws QueueFull when the queue is full,
  // else queues it and returns its id (never 0). Callbacks start after submit() returns.
  virtual uint64_t submit(SequenceRequest request, SequenceCallbacks callbacks) = 0;
  // Ends a queued or running sequence with SequenceEnd::Cancelled and frees its slot; ids that
  // are unknown or already finished are ignored. Callable from any thread, also from callbacks.
  virtual void cancel(uint64_t id) = 0;
  virtual SchedulerStats stats() const = 0;
  virtual int n_ctx() const = 0;
  // Stops accepting requests (submit() throws Error), then either lets running and queued
  // sequences finish (drain) or cancels them, and returns after every on_end was called.
  virtual void shutdown(bool drain) = 0;
};

}  // namespace torchless
