#pragma once
// A Session runs one token sequence through one model: it owns the backend, the Transformer,
// the tokenizer and the KV cache, and turns a prompt into streamed text:
//   prompt -> tokens -> prefill (one batch) -> decode loop (one token per step) -> sampler
//   -> StreamDecoder -> text.
// The sequence persists across calls: append() and generate() continue at the current
// position, so a chat loop appends each turn's tokens without re-evaluating the history.
// A sampled token is evaluated lazily (at the next append or decode step), so tokens() may be
// one ahead of what the KV cache holds; callers never need to care.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/engine/sampler.h"
#include "torchless/engine/scheduler.h"
#include "torchless/formats/model_loader.h"
#include "torchless/model/kv_cache.h"
#include "torchless/model/transformer.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

struct SessionOptions {
  std::filesystem::path model_path;      // GGUF file, HF directory or llama2.c .bin
  std::filesystem::path tokenizer_path;  // optional: overrides the model's own tokenizer
  std::string backend = "auto";          // auto, cpu, metal, cuda, metal-emulated
  int threads = 0;                       // CPU threads; 0 = physical cores
  int n_ctx = 0;                         // 0: the model's context, at most kDefaultMaxContext
  DType kv_dtype = DType::F32;           // KV cache: F32, F16 or Q8_0 (head_dim % 32 == 0)
  bool load_tokenizer = true;            // false: ids only (e.g. `logits` on a bare HF dir)
  bool batch_invariant = false;          // BackendOptions::batch_invariant (serving)
  int tensor_parallel = 1;               // ranks the model is split over (docs/multi-gpu.md)
};

// Models trained on very long contexts would need gigabytes of KV cache by default.
inline constexpr int kDefaultMaxContext = 4096;

struct Timings {
  double load_ms = 0;
  int prompt_tokens = 0;
  double prompt_ms = 0;
  int generated_tokens = 0;
  double generate_ms = 0;

  double prompt_tokens_per_s() const;
  double generated_tokens_per_s() const;
};

enum class StopReason {
  EndOfGeneration,  // the model emitted EOS/EOT (the token is in `tokens`, not in `text`)
  MaxTokens,        // generated max_tokens
  ContextFull,      // the sequence reached n_ctx
  Callback,         // the token callback returned false
};
std::string_view stop_reason_name(StopReason reason);

struct GenerationOptions {
  int max_tokens = 128;  // < 0: until end of generation or of the context
  SamplerOptions sampling;
  bool stop_at_end_of_generation = true;
  // When the context fills: < 0 stops (StopReason::ContextFull); >= 0 keeps the first
  // `context_keep` tokens (the system prompt), drops the oldest half of the rest and goes on.
  int context_keep = -1;
  // > 0: record the n most likely tokens of the model's distribution (softmax of the raw
  // logits, before any sampling step) at every generated position.
  int n_probs = 0;
};

struct GenerationResult {
  std::vector<int32_t> prompt_tokens;  // as appended (after tokenisation)
  std::vector<int32_t> tokens;         // generated ids
  std::string text;                    // the generated text (streamed pieces concatenated)
  StopReason stop = StopReason::MaxTokens;
  Timings timings;
  std::vector<std::vector<TokenProbability>> top_probs;  // per generated token, with n_probs
};

// Called once per generated token with the text it completes (may be empty while a UTF-8
// character is split across tokens). Return false to stop generating. At the end, text held
// back by the stream decoder (an incomplete UTF-8 tail) comes with id -1.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

class Session {
 public:
  // Loads the model, the backend and (if asked) the tokenizer; throws Error saying what failed.
  explicit Session(const SessionOptions& options);
  // From parts (tests, tools); `tokenizer` may be null.
  Session(LoadedModel model, std::unique_ptr<Backend> backend, std::unique_ptr<Tokenizer> tokenizer,
          int n_ctx, DType kv_dtype = DType::F32);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const ModelConfig& config() const { return transformer_->config(); }
  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }
  // Const: only the session runs forward(), so the logits it keeps stay valid.
  const Transformer& transformer() const { return *transformer_; }
  // A scheduler running many sequences on this session's model (make_scheduler()). The
  // session must outlive it and is not used meanwhile: the scheduler owns the transformer.
  std::unique_ptr<Scheduler> make_scheduler(const SchedulerOptions& options);
  // The transformer for a scheduler built by hand (tests), under the same contract.
  Transformer& transformer_for_scheduler() {
    logits_at_ = -1;
    return *transformer_;
  }
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  const Tokenizer& tokenizer() const;  // throws Error when the session has none
  int n_ctx() const { return cache_->n_ctx(); }
  double load_ms() const { return load_ms_; }

  // The sequence so far: everything appended and generated.
  std::span<const int32_t> tokens() const { return tokens_; }
  int n_tokens() const { return static_cast<int>(tokens_.size()); }
  // Keeps the first n tokens (e.g. to drop a reply); reset() empties the sequence.
  void truncate(int n);
  void reset() { truncate(0); }
  // Makes room at the end of a full context: keeps the first n_keep tokens, drops the oldest
  // half of the others and re-evaluates what remains after them (as llama.cpp's context
  // shift, by recomputation). Returns the number of tokens dropped.
  int shift_context(int n_keep);

  // Text -> ids; adds BOS (when the vocabulary wants it) only at the start of the sequence.
  std::vector<int32_t> tokenize(std::string_view text, bool parse_special = false) const;

  // Appends tokens at the current position, evaluates them in one batch and returns the
  // logits after the last one [n_vocab]. Throws Error when they do not fit the context.
  std::span<const float> append(std::span<const int32_t> tokens);
  // The same, returning the logits after every appended token [n, n_vocab] (row-major).
  std::span<const float> append_all_logits(std::span<const int32_t> tokens);

  // Appends `prompt` (may be empty to continue the sequence), then samples until a stop
  // condition. `on_token` streams the text.
  GenerationResult generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                            const TokenCallback& on_token = {});
  GenerationResult generate(std::string_view prompt, const GenerationOptions& options,
                            const TokenCallback& on_token = {});

 private:
  void evaluate_pending();
  std::vector<TokenProbability> top_probabilities(int n) const;  // of last_logits_
  void check_appendable(std::span<const int32_t> tokens) const;

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<KvCache> cache_;
  std::vector<int32_t> tokens_;  // the sequence; the cache holds its first cache_->size()
  // The logits after the last evaluated token: a view of the Transformer's host buffer (one
  // copy per token, not two), valid until the next forward(), which only this class calls.
  std::span<const float> last_logits_;
  int logits_at_ = -1;          // sequence length last_logits_ belong to (-1: none)
  std::vector<int32_t> batch_;  // scratch: tokens to evaluate
  double load_ms_ = 0;
};

}  // namespace torchless
