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
}

void Sampler::reseed(uint64_t seed) {
  options_.seed = seed;
  rng_.seed(seed);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.empty()) fail("cannot sample from an empty row of logits");
  apply_penalties(logits, history);
  if (options_.temperature <= 0) return argmax();
  build_candidates();
  const double target = next_uniform();
  double cumulative = 0;
  for (const auto& c : candidates_) {
    cumulative += c.p;
    if (target < cumulative) return c.id;
  }
  return candidates_.back().id;  // rounding left the sum a hair below 1
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
  const bool repeat = options_.repeat_penalty != 1.0f;
  const bool presence = options_.presence_penalty != 0.0f;
  if ((!repeat && !presence) || history.empty() || options_.penalty_last_n == 0) return;

  size_t n = history.size();
  if (options_.penalty_last_n > 0) n = std::min(n, static_cast<size_t>(options_.penalty_last_n));
  const auto recent = history.last(n);
  seen_.assign(recent.begin(), recent.end());
  std::sort(seen_.begin(), seen_.end());
  seen_.erase(std::unique(seen_.begin(), seen_.end()), seen_.end());
  for (int32_t id : seen_) {
    if (id < 0 || static_cast<size_t>(id) >= penalized_.size()) continue;
    float& l = penalized_[static_cast<size_t>(id)];
    if (repeat) l = l > 0 ? l / options_.repeat_penalty : l * options_.repeat_penalty;
    l -= options_.presence_penalty;
  }
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

  size_t keep = candidates_.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < keep) {
    keep = static_cast<size_t>(options_.top_k);
  }
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(keep),
                    candidates_.end(), more_likely);
  candidates_.resize(keep);
  renormalise(candidates_);

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

double Sampler::next_uniform() {
  // 53 random bits -> a double in [0, 1), identical on every platform.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

}  // namespace torchless
