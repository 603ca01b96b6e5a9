#include "torchless/engine/session.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "torchless/core/error.h"
#include "torchless/engine/scheduler_factory.h"
#include "torchless/engine/weight_prefetch.h"

namespace torchless {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double per_second(int count, double ms) {
  return ms > 0 ? count * 1000.0 / ms : 0.0;
}

std::unique_ptr<Tokenizer> open_tokenizer(const SessionOptions& options, const LoadedModel& model) {
  if (!options.load_tokenizer) return nullptr;
  return load_tokenizer(model, options.tokenizer_path);
}

// A tokenizer with ids the model has no embedding for gives garbage or out-of-range reads.
// Hugging Face configs may pad vocab_size beyond tokenizer.json, so only there may the
// tokenizer be smaller than the model.
void check_vocab_sizes(const Tokenizer& tok, const ModelConfig& config,
                       const SessionOptions& options) {
  const int32_t n_tok = tok.n_vocab();
  const int32_t n_model = config.n_vocab;
  if (n_tok == n_model) return;
  const std::filesystem::path& source =
      options.tokenizer_path.empty() ? options.model_path : options.tokenizer_path;
  const bool hf = std::filesystem::is_directory(source) || source.filename() == "tokenizer.json";
  if (n_tok < n_model && hf) return;
  fail(
      "the tokenizer ({}) has {} tokens but the model ({}) has a vocabulary of {}: pass the "
      "model's own tokenizer with --tokenizer",
      options.tokenizer_path.empty() ? "the model's" : options.tokenizer_path.string(), n_tok,
      options.model_path.string(), n_model);
}

int resolve_context(int requested, const ModelConfig& config) {
  if (requested < 0) fail("context length must be positive, got {}", requested);
  if (requested > 0) return requested;
  if (config.n_ctx_train > 0) return std::min(config.n_ctx_train, kDefaultMaxContext);
  return kDefaultMaxContext;
}

}  // namespace

double Timings::prompt_tokens_per_s() const {
  return per_second(prompt_tokens, prompt_ms);
}
double Timings::generated_tokens_per_s() const {
  return per_second(generated_tokens, generate_ms);
}

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfGeneration:
      return "end_of_generation";
    case StopReason::MaxTokens:
      return "max_tokens";
    case StopReason::ContextFull:
      return "context_full";
    case StopReason::Callback:
      return "callback";
  }
  return "unknown";
}

namespace {

void check_memory(const Backend& backend, const LoadedModel& model, int n_ctx, DType kv_dtype,
                  int tensor_parallel = 1) {
  const std::string warning =
      backend.check_memory_plan(Transformer::memory_plan(model, n_ctx, kv_dtype, tensor_parallel));
  if (!warning.empty()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
}

// Split over n ranks, each CPU rank gets its share of the threads (at least one).
BackendOptions rank_backend_options(const SessionOptions& options) {
  BackendOptions b;
  b.threads = options.threads;
  b.batch_invariant = options.batch_invariant;
  const int n = options.tensor_parallel;
  if (n > 1) {
    const int total = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    b.threads = std::max(1, total / n);
  }
  return b;
}

// Ranks >= 1 get a backend of rank 0's kind (CUDA: on their own GPU).
TensorParallelOptions tensor_parallel_options(const SessionOptions& options, const Backend& rank0,
                                              const BackendOptions& base) {
  TensorParallelOptions tp;
  tp.size = options.tensor_parallel;
  tp.make_backend = [kind = std::string(rank0.name()), base](int rank) {
    return make_rank_backend(kind, base, rank);
  };
  return tp;
}

}  // namespace

Session::Session(const SessionOptions& options) {
  const auto start = Clock::now();
  LoadedModel model = load_model(options.model_path);
  if (options.tensor_parallel > 1) check_tensor_parallel(model, options.tensor_parallel);
  const BackendOptions backend_options = rank_backend_options(options);
  backend_ = init_backend(options.backend, backend_options);
  tokenizer_ = open_tokenizer(options, model);
  if (tokenizer_) check_vocab_sizes(*tokenizer_, model.config, options);
  const int n_ctx = resolve_context(options.n_ctx, model.config);
  const DType kv_dtype = options.kv_dtype;
  check_kv_dtype(kv_dtype, model.config);
  check_memory(*backend_, model, n_ctx, kv_dtype, options.tensor_parallel);
  // A backend that copies the weights into its own memory reads the file then (and draws the
  // bar itself): touching the pages first would read them twice.
  if (backend_->device().unified_memory) {
    // The layers' matrices and the output head (Transformer::upload_matrix) that the backend
    // repacks are read there, once, and their pages released.
    const Backend& backend = *backend_;
    auto repacked = [&backend](const std::string& name, const HostTensorView& view) {
      return (name.starts_with("blk.") || name == "output.weight") && view.shape.rank() == 2 &&
             backend.repacks_matrix(view.dtype, view.shape.cols());
    };
    prefetch_weights(model.weights,
                     {.show_progress = isatty(STDERR_FILENO) != 0, .skip = repacked});
  }
  transformer_ = std::make_unique<Transformer>(
      std::move(model), *backend_, tensor_parallel_options(options, *backend_, backend_options));
  cache_ = transformer_->new_kv_cache(n_ctx, kv_dtype);
  tokens_.reserve(static_cast<size_t>(n_ctx) + 1);
  batch_.reserve(static_cast<size_t>(n_ctx));
  backend_->synchronize();
  load_ms_ = ms_since(start);
}

Session::Session(LoadedModel model, std::unique_ptr<Backend> backend,
                 std::unique_ptr<Tokenizer> tokenizer, int n_ctx, DType kv_dtype)
    : backend_(std::move(backend)), tokenizer_(std::move(tokenizer)) {
  if (!backend_) fail("a session needs a backend");
  const int resolved = resolve_context(n_ctx, model.config);
  check_kv_dtype(kv_dtype, model.config);
  check_memory(*backend_, model, resolved, kv_dtype);
  transformer_ = std::make_unique<Transformer>(std::move(model), *backend_);
  cache_ = transformer_->new_kv_cache(resolved, kv_dtype);
  tokens_.reserve(static_cast<size_t>(resolved) + 1);
  batch_.reserve(static_cast<size_t>(resolved));
}

Session::~Session() = default;

const Tokenizer& Session::tokenizer() const {
  if (!tokenizer_) fail("this session has no tokenizer (model loaded for token ids only)");
  return *tokenizer_;
}

void Session::truncate(int n) {
  if (n < 0 || n > n_tokens()) fail("cannot truncate a sequence of {} tokens to {}", n_tokens(), n);
  if (n != n_tokens()) logits_at_ = -1;
  tokens_.resize(static_cast<size_t>(n));
  // Keep at least one token pending so that the logits after token n-1 get recomputed.
  cache_->truncate(std::min(cache_->size(), std::max(0, n - 1)));
}

int Session::shift_context(int n_keep) {
  n_keep = std::clamp(n_keep, 0, std::max(0, n_ctx() / 2));
  const int n_left = n_tokens() - n_keep;
  if (n_left < 2) fail("cannot shift a context of {} tokens keeping {}", n_tokens(), n_keep);
  const int n_discard = n_left / 2;
  tokens_.erase(tokens_.begin() + n_keep, tokens_.begin() + n_keep + n_discard);
  cache_->truncate(std::min(cache_->size(), n_keep));
  logits_at_ = -1;
  return n_discard;
}

std::vector<int32_t> Session::tokenize(std::string_view text, bool parse_special) const {
  EncodeOptions options;
  options.parse_special = parse_special;
  if (!tokens_.empty()) options.add_bos = false;
  return tokenizer().encode(text, options);
}

void Session::check_appendable(std::span<const int32_t> tokens) const {
  if (tokens_.size() + tokens.size() > static_cast<size_t>(n_ctx())) {
    fail(
        "{} tokens after the {} already in the sequence exceed the context length of {} "
        "(use --ctx to enlarge it)",
        tokens.size(), tokens_.size(), n_ctx());
  }
  const int32_t n_vocab = config().n_vocab;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab) {
      fail("token {} at index {} is outside the vocabulary of {}", tokens[i], i, n_vocab);
    }
  }
}

std::vector<TokenProbability> Session::top_probabilities(int n) const {
  const float max_logit = *std::max_element(last_logits_.begin(), last_logits_.end());
  double total = 0;
  for (const float l : last_logits_) total += std::exp(static_cast<double>(l - max_logit));
  std::vector<TokenProbability> all(last_logits_.size());
  for (size_t i = 0; i < all.size(); ++i) {
    all[i] = {
        static_cast<int32_t>(i),
        static_cast<float>(std::exp(static_cast<double>(last_logits_[i] - max_logit)) / total)};
  }
  const size_t keep = std::min(all.size(), static_cast<size_t>(n));
  std::partial_sort(
      all.begin(), all.begin() + static_cast<ptrdiff_t>(keep), all.end(),
      [](const auto& a, const auto& b) { return a.p > b.p || (a.p == b.p && a.id < b.id); });
  all.resize(keep);
  return all;
}

// Evaluates the tokens the KV cache does not hold yet and keeps the logits after the last.
void Session::evaluate_pending() {
  if (tokens_.empty()) fail("the sequence is empty: nothing to evaluate");
  if (cache_->size() == n_tokens()) {
    if (logits_at_ == n_tokens()) return;
    cache_->truncate(n_tokens() - 1);  // recompute the last row (after truncate())
  }
  batch_.assign(tokens_.begin() + cache_->size(), tokens_.end());
  last_logits_ = transformer_->forward(batch_, cache_->size(), *cache_, LogitsMode::Last);
  logits_at_ = n_tokens();
}

std::span<const float> Session::append(std::span<const int32_t> tokens) {
  if (tokens.empty()) fail("append needs at least one token");
  check_appendable(tokens);
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  evaluate_pending();
  return last_logits_;
}

std::span<const float> Session::append_all_logits(std::span<const int32_t> tokens) {
  if (tokens.empty()) fail("append needs at least one token");
  check_appendable(tokens);
  if (cache_->size() < n_tokens()) evaluate_pending();
  const int pos0 = n_tokens();
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  const auto logits = transformer_->forward(tokens, pos0, *cache_, LogitsMode::All);
  const size_t n_vocab = static_cast<size_t>(config().n_vocab);
  last_logits_ = logits.last(n_vocab);
  logits_at_ = n_tokens();
  return logits;
}

GenerationResult Session::generate(std::string_view prompt, const GenerationOptions& options,
                                   const TokenCallback& on_token) {
  const std::vector<int32_t> ids = prompt.empty() ? std::vector<int32_t>{} : tokenize(prompt);
  return generate(ids, options, on_token);
}

GenerationResult Session::generate(std::span<const int32_t> prompt,
                                   const GenerationOptions& options,
                                   const TokenCallback& on_token) {
  GenerationResult result;
  result.prompt_tokens.assign(prompt.begin(), prompt.end());
  if (tokens_.empty() && prompt.empty()) fail("cannot generate from an empty prompt");
  check_appendable(prompt);

  const auto prompt_start = Clock::now();
  tokens_.insert(tokens_.end(), prompt.begin(), prompt.end());
  evaluate_pending();
  result.timings.load_ms = load_ms_;
  result.timings.prompt_tokens = static_cast<int>(prompt.size());
  result.timings.prompt_ms = ms_since(prompt_start);

  const auto generate_start = Clock::now();
  Sampler sampler(options.sampling);
  std::optional<StreamDecoder> decoder;
  if (tokenizer_) decoder.emplace(*tokenizer_);
  if (options.max_tokens > 0) result.tokens.reserve(static_cast<size_t>(options.max_tokens));
  const auto reached_max = [&] {
    return options.max_tokens >= 0 &&
           result.tokens.size() >= static_cast<size_t>(options.max_tokens);
  };

  result.stop = StopReason::MaxTokens;
  while (true) {
    if (reached_max()) break;
    if (n_tokens() >= n_ctx()) {
      if (options.context_keep < 0) {
        result.stop = StopReason::ContextFull;
        break;
      }
      shift_context(options.context_keep);
      evaluate_pending();
    }
    if (options.n_probs > 0) result.top_probs.push_back(top_probabilities(options.n_probs));
    const int32_t id = sampler.sample(last_logits_, tokens_);
    tokens_.push_back(id);
    result.tokens.push_back(id);
    const bool end =
        options.stop_at_end_of_generation && tokenizer_ && tokenizer_->is_end_of_generation(id);
    const std::string text = decoder && !end ? decoder->feed(id) : std::string();
    result.text += text;
    if (on_token && !on_token(id, text)) {
      result.stop = StopReason::Callback;
      break;
    }
    if (end) {
      result.stop = StopReason::EndOfGeneration;
      break;
    }
    if (reached_max() || n_tokens() >= n_ctx()) continue;  // the loop head says which
    evaluate_pending();
  }
  if (decoder) {
    const std::string tail = decoder->flush();
    if (!tail.empty()) {
      result.text += tail;
      if (on_token) on_token(-1, tail);
    }
  }
  result.timings.generated_tokens = static_cast<int>(result.tokens.size());
  result.timings.generate_ms = ms_since(generate_start);
  return result;
}

std::unique_ptr<Scheduler> Session::make_scheduler(const SchedulerOptions& options) {
  // The scheduler's forward passes overwrite the logits last_logits_ views.
  return torchless::make_scheduler(transformer_for_scheduler(), tokenizer_.get(), options);
}

}  // namespace torchless
