#include "torchless/engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "torchless/core/error.h"

namespace torchless {
namespace {

bool more_likely(const TokenProbability& a, const TokenProbability& b) {
  return a.p > b.p || (a.p == b.p && a.id < b.id);
}

// Scales the kept candidates to sum to one.
void renormalise(std::vector<TokenProbability>& candidates) {
  double total = 0;
  for (const auto& c : candidates) total += c.p;
  for (auto& c : candidates) c.p = static_cast<float>(c.p / total);
}

}  // namespace

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {
  if (options.repeat_penalty <= 0) {
    fail("repeat penalty must be positive, got {}", options.repeat_penalty);
  }
  if (options.top_p <= 0) fail("top-p must be positive, got {}", options.top_p);
  if (options.min_p >= 1) fail("min-p must be below 1, got {}", options.min_p);
  if (options.mirostat < 0 || options.mirostat > 2) {
    fail("mirostat must be 0 (off), 1 or 2, got {}", options.mirostat);
  }
  if (options.mirostat_m < 1) fail("mirostat m must be 1 or more, got {}", options.mirostat_m);
  mu_ = 2.0 * options.mirostat_tau;
  const auto& breakers = options.dry_sequence_breakers;
  for (size_t i = 0; i < breakers.size(); ++i) {
    if (breakers[i].empty()) fail("DRY sequence breaker {} has no tokens", i);
    breaker_heads_.emplace_back(breakers[i].front(), i);
    longest_breaker_ = std::max(longest_breaker_, breakers[i].size());
  }
  std::sort(breaker_heads_.begin(), breaker_heads_.end());
}

void Sampler::reseed(uint64_t seed) {
  options_.seed = seed;
  rng_.seed(seed);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history,
                        const TokenConstraint* constraint) {
  if (logits.empty()) fail("cannot sample from an empty row of logits");
  apply_penalties(logits, history);
  if (constraint == nullptr) return draw();
  const double mu = mu_;
  const int32_t first = draw();
  if (constraint->allows(first)) return first;
  mu_ = mu;  // the refused draw must not move mirostat's target
  constraint->mask(penalized_);
  if (std::none_of(penalized_.begin(), penalized_.end(), [](float l) { return l > -INFINITY; })) {
    fail("no token can continue the constrained output");
  }
  const int32_t id = draw();
  if (!constraint->allows(id)) fail("the sampler drew token {}, which the constraint refuses", id);
  return id;
}

int32_t Sampler::draw() {
  if (options_.temperature <= 0) return argmax();
  build_candidates();
  const double target = next_uniform();
  double cumulative = 0;
  // If rounding left the sum below the target: the least likely candidate with a chance (a
  // masked token has none).
  const TokenProbability* drawn = &candidates_.front();
  for (const auto& c : candidates_) {
    if (c.p > 0) drawn = &c;
    cumulative += c.p;
    if (target < cumulative) break;
  }
  if (options_.mirostat != 0) {
    mu_ -=
        options_.mirostat_eta * (-std::log2(static_cast<double>(drawn->p)) - options_.mirostat_tau);
  }
  return drawn->id;
}

std::vector<TokenProbability> Sampler::distribution(std::span<const float> logits,
                                                    std::span<const int32_t> history) {
  if (logits.empty()) fail("cannot sample from an empty row of logits");
  apply_penalties(logits, history);
  if (options_.temperature <= 0) return {};
  build_candidates();
  return candidates_;
}

void Sampler::apply_penalties(std::span<const float> logits, std::span<const int32_t> history) {
  penalized_.assign(logits.begin(), logits.end());
  for (const auto& [id, bias] : options_.logit_bias) {
    if (id >= 0 && static_cast<size_t>(id) < penalized_.size()) {
      penalized_[static_cast<size_t>(id)] += bias;
    }
  }
  const bool repeat = options_.repeat_penalty != 1.0f;
  const bool presence = options_.presence_penalty != 0.0f;
  const bool frequency = options_.frequency_penalty != 0.0f;
  const bool dry = options_.dry_multiplier != 0.0f;
  if ((!repeat && !presence && !frequency && !dry) || history.empty() ||
      options_.penalty_last_n == 0) {
    return;
  }

  size_t n = history.size();
  if (options_.penalty_last_n > 0) n = std::min(n, static_cast<size_t>(options_.penalty_last_n));
  const auto recent = history.last(n);
  if (dry) apply_dry(recent);
  seen_.assign(recent.begin(), recent.end());
  std::sort(seen_.begin(), seen_.end());
  for (auto run = seen_.begin(); run != seen_.end();) {
    const int32_t id = *run;
    const auto end = std::upper_bound(run, seen_.end(), id);
    const auto occurrences = static_cast<float>(end - run);
    run = end;
    if (id < 0 || static_cast<size_t>(id) >= penalized_.size()) continue;
    float& l = penalized_[static_cast<size_t>(id)];
    if (repeat) l = l > 0 ? l / options_.repeat_penalty : l * options_.repeat_penalty;
    l -= options_.presence_penalty + occurrences * options_.frequency_penalty;
  }
}

// For every earlier position j, the length of the longest run ending at j that equals the
// run ending at the last token; history[j + 1] would extend a repeat of that length.
// Lengths are capped at dry_repeat_limit, so a repeat never reaches into a breaker.
void Sampler::apply_dry(std::span<const int32_t> recent) {
  const size_t n = recent.size();
  dry_length_.assign(penalized_.size(), 0);
  const size_t limit = dry_repeat_limit(recent);
  if (limit < static_cast<size_t>(std::max(options_.dry_allowed_length, 1))) return;
  for (size_t j = 0; j + 1 < n; ++j) {
    size_t length = 0;
    while (length < limit && length <= j && recent[j - length] == recent[n - 1 - length]) {
      ++length;
    }
    const int32_t next = recent[j + 1];
    if (next < 0 || static_cast<size_t>(next) >= penalized_.size()) continue;
    int& best = dry_length_[static_cast<size_t>(next)];
    best = std::max(best, static_cast<int>(length));
  }
  for (size_t id = 0; id < penalized_.size(); ++id) {
    const int length = dry_length_[id];
    if (length > 0 && length >= options_.dry_allowed_length) {
      penalized_[id] -=
          options_.dry_multiplier *
          std::pow(options_.dry_base, static_cast<float>(length - options_.dry_allowed_length));
    }
  }
}

// The number of tokens after the end of the latest complete breaker sequence in `recent`
// (all of them when there is none). Scans heads from the end and stops where no breaker
// starting there could end later than the best found.
size_t Sampler::dry_repeat_limit(std::span<const int32_t> recent) const {
  if (breaker_heads_.empty()) return recent.size();
  const auto& breakers = options_.dry_sequence_breakers;
  size_t best_end = 0;  // one past the latest breaker's last token
  for (size_t start = recent.size(); start-- > 0 && start + longest_breaker_ > best_end;) {
    const auto first = std::lower_bound(breaker_heads_.begin(), breaker_heads_.end(),
                                        std::pair<int32_t, size_t>{recent[start], 0});
    for (auto it = first; it != breaker_heads_.end() && it->first == recent[start]; ++it) {
      const std::vector<int32_t>& seq = breakers[it->second];
      if (start + seq.size() > recent.size()) continue;
      if (std::equal(seq.begin(), seq.end(), recent.begin() + static_cast<ptrdiff_t>(start))) {
        best_end = std::max(best_end, start + seq.size());
      }
    }
  }
  return recent.size() - best_end;
}

int32_t Sampler::argmax() const {
  // max_element keeps the first of equal maxima, i.e. the lowest id.
  return static_cast<int32_t>(std::max_element(penalized_.begin(), penalized_.end()) -
                              penalized_.begin());
}

void Sampler::build_candidates() {
  const float inv_temperature = 1.0f / options_.temperature;
  const float max_logit = *std::max_element(penalized_.begin(), penalized_.end());
  candidates_.resize(penalized_.size());
  double total = 0;
  for (size_t i = 0; i < penalized_.size(); ++i) {
    const float p = std::exp((penalized_[i] - max_logit) * inv_temperature);
    candidates_[i] = {static_cast<int32_t>(i), p};
    total += p;
  }
  for (auto& c : candidates_) c.p = static_cast<float>(c.p / total);

  if (options_.mirostat == 1) {
    keep_mirostat_v1();
    return;
  }
  if (options_.mirostat == 2) {
    keep_mirostat();
    return;
  }
  size_t keep = candidates_.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < keep) {
    keep = static_cast<size_t>(options_.top_k);
  }
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(keep),
                    candidates_.end(), more_likely);
  candidates_.resize(keep);
  renormalise(candidates_);
  if (options_.typical_p < 1.0f) keep_typical();

  if (options_.top_p < 1.0f) {
    double cumulative = 0;
    size_t n = 0;
    while (n < candidates_.size()) {
      cumulative += candidates_[n++].p;
      if (cumulative >= options_.top_p) break;
    }
    candidates_.resize(n);
    renormalise(candidates_);
  }
  if (options_.min_p > 0) {
    const float threshold = options_.min_p * candidates_.front().p;
    size_t n = 1;
    while (n < candidates_.size() && candidates_[n].p >= threshold) ++n;
    candidates_.resize(n);
    renormalise(candidates_);
  }
}

// Locally typical sampling: the tokens whose surprise -ln p is closest to the entropy of the
// distribution, until their mass reaches typical_p; then back in probability order.
void Sampler::keep_typical() {
  double entropy = 0;
  for (const auto& c : candidates_) {
    if (c.p > 0) entropy -= c.p * std::log(static_cast<double>(c.p));
  }
  scored_.clear();
  for (const auto& c : candidates_) {
    const double surprise = c.p > 0 ? -std::log(static_cast<double>(c.p)) : INFINITY;
    scored_.push_back({std::abs(surprise - entropy), c});
  }
  std::stable_sort(scored_.begin(), scored_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  double cumulative = 0;
  size_t n = 0;
  while (n < scored_.size()) {
    cumulative += scored_[n++].second.p;
    if (cumulative >= options_.typical_p) break;
  }
  candidates_.clear();
  for (size_t i = 0; i < n; ++i) candidates_.push_back(scored_[i].second);
  std::sort(candidates_.begin(), candidates_.end(), more_likely);
  renormalise(candidates_);
}

// Mirostat v2's truncation: surprise -log2 p at most mu, the most likely token always kept.
void Sampler::keep_mirostat() {
  std::sort(candidates_.begin(), candidates_.end(), more_likely);
  size_t n = 1;
  while (n < candidates_.size() && -std::log2(static_cast<double>(candidates_[n].p)) <= mu_) {
    ++n;
  }
  candidates_.resize(n);
  renormalise(candidates_);
}

// Mirostat v1 (Basu et al. 2021, as llama.cpp): fit the Zipf exponent s to the m most likely
// tokens, then keep the k tokens whose expected surprise is mu. A pair with p = 0 ends the fit
// (its log ratio is infinite); without any pair, or with a k that is not finite, only the best
// token or every token is kept.
void Sampler::keep_mirostat_v1() {
  std::sort(candidates_.begin(), candidates_.end(), more_likely);
  const size_t pairs =
      std::min(static_cast<size_t>(options_.mirostat_m - 1), candidates_.size() - 1);
  double sum_tb = 0;
  double sum_tt = 0;
  for (size_t i = 0; i < pairs && candidates_[i + 1].p > 0; ++i) {
    const double t = std::log(static_cast<double>(i + 2) / static_cast<double>(i + 1));
    const double b = std::log(static_cast<double>(candidates_[i].p) / candidates_[i + 1].p);
    sum_tb += t * b;
    sum_tt += t * t;
  }
  size_t keep = 1;
  if (sum_tt > 0) {
    const double s = sum_tb / sum_tt;
    const double e = s - 1;
    const double n = static_cast<double>(candidates_.size());
    const double k = std::pow(e * std::pow(2.0, mu_) / (1 - std::pow(n, -e)), 1 / s);
    if (std::isfinite(k)) {
      keep = static_cast<size_t>(std::clamp(k, 1.0, n));
    } else if (k > 0) {
      keep = candidates_.size();
    }
  }
  candidates_.resize(keep);
  renormalise(candidates_);
}

double Sampler::next_uniform() {
  // 53 random bits -> a double in [0, 1), identical on every platform.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

}  // namespace torchless
