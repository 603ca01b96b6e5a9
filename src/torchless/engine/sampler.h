#pragma once
// Picks the next token from a row of logits. The chain, applied in this order:
//   0. logit bias: added to the chosen tokens' logits (-inf bans a token);
//   1. repetition penalty (CTRL-style: a positive logit is divided by it, a negative one
//      multiplied), presence penalty (subtracted once) and frequency penalty (subtracted once
//      per occurrence) for every distinct token among the last `penalty_last_n` tokens;
//   1b. DRY ("don't repeat yourself"): a token that would extend a repeat of the sequence's
//      last L >= dry_allowed_length tokens (among the last penalty_last_n) loses
//      dry_multiplier * dry_base^(L - dry_allowed_length). A repeat never reaches back into
//      a sequence breaker: L is at most the number of tokens after the end of the latest
//      complete breaker sequence (dry_breaker_sequences() computes them from strings);
//   2. temperature <= 0: greedy (argmax, lowest id on ties) — nothing else applies;
//   3. logits / temperature, softmax;
//   4. mirostat when on, and then the truncations of step 4b do not apply. v2: keep the
//      tokens whose surprise -log2 p is at most mu (at least one). v1: estimate the Zipf
//      exponent s from the m most likely tokens (least squares of log(p_i / p_i+1) on
//      log((i + 2) / (i + 1))), keep the k = (e 2^mu / (1 - N^-e))^(1/s) most likely, e = s - 1,
//      N the vocabulary. Both renormalise, draw, then mu -= eta * (surprise of the drawn
//      token - tau);
//   4b. top-k (keep the k most likely), typical (the tokens whose surprise is closest to the
//      entropy, up to mass typical_p), top-p (the smallest most-likely set whose mass reaches
//      p), min-p (drop tokens below min_p × the top probability); each renormalises;
//   5. one draw from the remaining distribution with the seeded generator.
// With a TokenConstraint, sample() keeps the token the chain picks when the constraint allows it
// (the usual case, and cheap); otherwise it sets every disallowed logit to -inf and runs steps
// 2-5 again, as llama.cpp's grammar sampling does. Without truncation this draws exactly from
// the constrained distribution: p(t) + (1 - Z) p(t) / Z = p(t) / Z, Z the allowed mass.
// Same options, same seed, same logits -> same tokens, on every platform (the generator and
// the uniform draw are fixed here, not left to the standard library's distributions).
// The decode loop calls sample() once per token; it allocates nothing after the first call.
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "torchless/engine/token_constraint.h"

namespace torchless {

struct SamplerOptions {
  float temperature = 0.8f;        // <= 0: greedy
  int top_k = 40;                  // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off
  float repeat_penalty = 1.0f;     // 1: off
  float presence_penalty = 0.0f;   // 0: off
  float frequency_penalty = 0.0f;  // 0: off
  int penalty_last_n = 64;         // tokens the penalties look back on; <0: the whole sequence
  float typical_p = 1.0f;          // >= 1: off
  float dry_multiplier = 0.0f;     // 0: off
  float dry_base = 1.75f;
  int dry_allowed_length = 2;
  // Token-id sequences a repeat never crosses (e.g. the tokens of "\n" and ":").
  std::vector<std::vector<int32_t>> dry_sequence_breakers;
  int mirostat = 0;                                   // 0: off, 1: mirostat v1, 2: mirostat v2
  int mirostat_m = 100;                               // v1: tokens that estimate s
  float mirostat_tau = 5.0f;                          // target surprise (bits)
  float mirostat_eta = 0.1f;                          // learning rate
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, added to its logit)
  uint64_t seed = 0;

  static SamplerOptions greedy() {
    SamplerOptions o;
    o.temperature = 0.0f;
    return o;
  }
};

struct TokenProbability {
  int32_t id;
  float p;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options = {});

  const SamplerOptions& options() const { return options_; }
  // Restarts the random sequence (same seed -> same draws again).
  void reseed(uint64_t seed);

  // `history`: the tokens of the sequence so far (prompt and generated); the penalties look at
  // its last penalty_last_n entries.
  // `constraint` (may be null): only a token it allows is returned; throws Error when it
  // allows none of the tokens the logits and logit biases leave possible.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history = {},
                 const TokenConstraint* constraint = nullptr);

  // The distribution step 5 draws from (after penalties, temperature and truncation), most
  // likely first; for tests and tools. Empty for greedy options.
  std::vector<TokenProbability> distribution(std::span<const float> logits,
                                             std::span<const int32_t> history = {});
  // Mirostat's current maximum surprise (starts at 2 tau).
  double mirostat_mu() const { return mu_; }

 private:
  void apply_penalties(std::span<const float> logits, std::span<const int32_t> history);
  int32_t draw();           // steps 2-5 on penalized_
  void build_candidates();  // from penalized_, into candidates_ (sorted, truncated)
  void keep_typical();
  void apply_dry(std::span<const int32_t> recent);
  size_t dry_repeat_limit(std::span<const int32_t> recent) const;
  void keep_mirostat();
  void keep_mirostat_v1();
  int32_t argmax() const;
  double next_uniform();  // in [0, 1)

  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<float> penalized_;
  std::vector<TokenProbability> candidates_;
  std::vector<int32_t> seen_;
  std::vector<std::pair<double, TokenProbability>> scored_;  // typical: (|surprise - H|, token)
  double mu_ = 0;
  std::vector<int> dry_length_;  // per token: the longest repeat it would extend
  // (first token, index into options_.dry_sequence_breakers), sorted: breakers by their head.
  std::vector<std::pair<int32_t, size_t>> breaker_heads_;
  size_t longest_breaker_ = 0;
};

}  // namespace torchless
