#include "torchless/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/core/error.h"

namespace torchless {
namespace {

constexpr uint32_t kSeed = 20241126;

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> logits(n);
  for (auto& l : logits) l = dist(rng);
  return logits;
}

// Independent reference: softmax(logits / temperature) in double.
std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp((logits[i] - max) / temperature);
  for (auto& v : p) v /= total;
  return p;
}

std::vector<int> ids_by_probability(const std::vector<double>& p) {
  std::vector<int> ids(p.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return p[a] > p[b]; });
  return ids;
}

SamplerOptions plain(float temperature) {
  SamplerOptions o;
  o.temperature = temperature;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.seed = kSeed;
  return o;
}

std::set<int32_t> distribution_ids(Sampler& sampler, const std::vector<float>& logits) {
  std::set<int32_t> ids;
  for (const auto& c : sampler.distribution(logits)) ids.insert(c.id);
  return ids;
}

TEST(Sampler, GreedyPicksArgmaxWithLowestIdOnTies) {
  Sampler sampler(SamplerOptions::greedy());
  EXPECT_EQ(sampler.sample(std::vector<float>{0.5f, 2.0f, -1.0f, 2.0f}), 1);
  const auto logits = random_logits(1001, kSeed);
  EXPECT_EQ(sampler.sample(logits),
            std::max_element(logits.begin(), logits.end()) - logits.begin());
}

TEST(Sampler, TemperatureTowardsZeroEqualsGreedy) {
  for (uint32_t trial = 0; trial < 20; ++trial) {
    const auto logits = random_logits(517, kSeed + trial);
    const int32_t greedy = Sampler(SamplerOptions::greedy()).sample(logits);
    Sampler cold(plain(1e-3f));
    for (int draw = 0; draw < 50; ++draw) EXPECT_EQ(cold.sample(logits), greedy) << trial;
  }
}

TEST(Sampler, TopKNeverEmitsOutsideTheKBest) {
  const auto logits = random_logits(997, kSeed);
  const auto order = ids_by_probability(softmax(logits, 1.0));
  SamplerOptions o = plain(1.5f);
  o.top_k = 7;
  Sampler sampler(o);
  const std::set<int32_t> best(order.begin(), order.begin() + 7);
  EXPECT_EQ(distribution_ids(sampler, logits), best);
  std::set<int32_t> drawn;
  for (int draw = 0; draw < 20000; ++draw) {
    const int32_t id = sampler.sample(logits);
    ASSERT_TRUE(best.count(id)) << "draw " << draw << " emitted " << id;
    drawn.insert(id);
  }
  EXPECT_EQ(drawn, best);  // at temperature 1.5 all seven show up in 20000 draws
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  const auto logits = random_logits(301, kSeed + 1, 1.5f);
  const double top_p = 0.8;
  const auto p = softmax(logits, 1.0);
  const auto order = ids_by_probability(p);
  std::set<int32_t> expected;
  double mass = 0;
  for (int id : order) {
    expected.insert(id);
    mass += p[static_cast<size_t>(id)];
    if (mass >= top_p) break;
  }
  SamplerOptions o = plain(1.0f);
  o.top_p = static_cast<float>(top_p);
  Sampler sampler(o);
  EXPECT_EQ(distribution_ids(sampler, logits), expected);
  for (int draw = 0; draw < 5000; ++draw) ASSERT_TRUE(expected.count(sampler.sample(logits)));
}

TEST(Sampler, MinPDropsTokensBelowTheFractionOfTheBest) {
  const auto logits = random_logits(263, kSeed + 2, 2.0f);
  const double min_p = 0.05;
  const auto p = softmax(logits, 1.0);
  const double best = *std::max_element(p.begin(), p.end());
  std::set<int32_t> expected;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] >= min_p * best) expected.insert(static_cast<int32_t>(i));
  }
  ASSERT_GT(expected.size(), 2u);
  SamplerOptions o = plain(1.0f);
  o.min_p = static_cast<float>(min_p);
  Sampler sampler(o);
  EXPECT_EQ(distribution_ids(sampler, logits), expected);
  for (int draw = 0; draw < 5000; ++draw) ASSERT_TRUE(expected.count(sampler.sample(logits)));
}

TEST(Sampler, SameSeedGivesTheSameSequence) {
  const auto logits = random_logits(1000, kSeed + 3, 1.0f);
  SamplerOptions o;  // defaults: temperature, top-k, top-p, min-p all on
  o.seed = 77;
  Sampler a(o), b(o);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.sample(logits));
    sb.push_back(b.sample(logits));
  }
  EXPECT_EQ(sa, sb);
  a.reseed(77);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(a.sample(logits), sa[static_cast<size_t>(i)]);
  o.seed = 78;
  Sampler c(o);
  std::vector<int32_t> sc;
  for (int i = 0; i < 200; ++i) sc.push_back(c.sample(logits));
  EXPECT_NE(sa, sc);
}

// Empirical frequencies over many draws against the softmax probabilities: every token within
// 5 standard deviations of its binomial count (a false failure has odds below 1e-5).
void expect_frequencies_match(Sampler& sampler, const std::vector<float>& logits,
                              const std::vector<double>& expected, int draws) {
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(sampler.sample(logits))];
  for (size_t id = 0; id < logits.size(); ++id) {
    const double p = expected[id];
    const double sigma = std::sqrt(draws * p * (1 - p));
    EXPECT_NEAR(counts[id], draws * p, 5 * sigma + 1) << "token " << id << " p " << p;
  }
}

TEST(Sampler, FrequenciesMatchSoftmaxProbabilities) {
  const auto logits = random_logits(13, kSeed + 4, 1.0f);
  const double temperature = 0.7;
  Sampler sampler(plain(static_cast<float>(temperature)));
  expect_frequencies_match(sampler, logits, softmax(logits, temperature), 200000);
}

TEST(Sampler, FrequenciesAfterTopKAreTheRenormalisedSoftmax) {
  const auto logits = random_logits(29, kSeed + 5, 1.0f);
  const double temperature = 1.3;
  auto p = softmax(logits, temperature);
  const auto order = ids_by_probability(p);
  double kept = 0;
  for (size_t rank = 0; rank < order.size(); ++rank) {
    double& v = p[static_cast<size_t>(order[rank])];
    if (rank < 5) {
      kept += v;
    } else {
      v = 0;
    }
  }
  for (auto& v : p) v /= kept;
  SamplerOptions o = plain(static_cast<float>(temperature));
  o.top_k = 5;
  Sampler sampler(o);
  expect_frequencies_match(sampler, logits, p, 100000);
}

TEST(Sampler, RepetitionPenaltyScalesRecentTokensOnly) {
  // Token 0 leads (+2.0) but is penalised: 2.0 / 2.5 = 0.8 < token 1's 1.5.
  const std::vector<float> logits = {2.0f, 1.5f, -1.0f, 1.0f};
  SamplerOptions o = SamplerOptions::greedy();
  o.repeat_penalty = 2.5f;
  o.penalty_last_n = 2;
  Sampler sampler(o);
  EXPECT_EQ(sampler.sample(logits, std::vector<int32_t>{0, 3}), 1);
  // Outside the last 2 tokens: no penalty.
  EXPECT_EQ(sampler.sample(logits, std::vector<int32_t>{0, 3, 3}), 0);
  // Negative logits are multiplied (made less likely), never divided towards zero.
  const std::vector<float> negative = {-1.0f, -1.2f};
  EXPECT_EQ(sampler.sample(negative, std::vector<int32_t>{0}), 1);
}

TEST(Sampler, PresencePenaltySubtractsOncePerDistinctToken) {
  const std::vector<float> logits = {1.0f, 0.7f};
  SamplerOptions o = SamplerOptions::greedy();
  o.presence_penalty = 0.2f;
  Sampler sampler(o);
  EXPECT_EQ(sampler.sample(logits, std::vector<int32_t>{0, 0, 0, 0}), 0);  // 0.8 > 0.7
  o.presence_penalty = 0.4f;
  Sampler stronger(o);
  EXPECT_EQ(stronger.sample(logits, std::vector<int32_t>{0}), 1);  // 0.6 < 0.7
}

// The sampler's distribution() as a dense vector of probabilities by id (0 where dropped).
std::vector<double> dense(const std::vector<TokenProbability>& d, size_t n) {
  std::vector<double> p(n, 0.0);
  for (const auto& c : d) p[static_cast<size_t>(c.id)] = c.p;
  return p;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << "id " << i;
}

TEST(Sampler, FrequencyPenaltyAndLogitBiasMatchAReference) {
  const auto logits = random_logits(50, kSeed);
  const std::vector<int32_t> history = {4, 9, 4, 4, 11, 9, 30};
  SamplerOptions o = plain(1.0f);
  o.frequency_penalty = 0.3f;
  o.presence_penalty = 0.2f;
  o.logit_bias = {{3, -INFINITY}, {7, 2.0f}};
  Sampler sampler(o);
  // Reference in double: bias, then presence once and frequency per occurrence.
  std::vector<float> adjusted(logits.begin(), logits.end());
  adjusted[3] = -INFINITY;
  adjusted[7] += 2.0f;
  std::map<int, int> counts;
  for (int id : history) ++counts[id];
  for (const auto& [id, n] : counts) adjusted[static_cast<size_t>(id)] -= 0.2f + 0.3f * n;
  expect_near(dense(sampler.distribution(logits, history), 50), softmax(adjusted, 1.0));
  EXPECT_NE(sampler.sample(logits, history), 3) << "seed " << kSeed;
}

TEST(Sampler, TypicalKeepsTheTokensClosestToTheEntropy) {
  for (const float typical : {0.2f, 0.5f, 0.9f}) {
    const auto logits = random_logits(40, kSeed + 1, 1.5f);
    SamplerOptions o = plain(0.9f);
    o.typical_p = typical;
    Sampler sampler(o);
    const auto p = softmax(logits, 0.9);
    double entropy = 0;
    for (double v : p) entropy -= v * std::log(v);
    std::vector<int> ids(p.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) {
      return std::abs(-std::log(p[a]) - entropy) < std::abs(-std::log(p[b]) - entropy);
    });
    std::vector<double> want(p.size(), 0.0);
    double mass = 0;
    for (int id : ids) {
      want[static_cast<size_t>(id)] = p[static_cast<size_t>(id)];
      mass += p[static_cast<size_t>(id)];
      if (mass >= typical) break;
    }
    for (auto& v : want) v /= mass;
    SCOPED_TRACE(typical);
    expect_near(dense(sampler.distribution(logits), p.size()), want);
  }
}

TEST(Sampler, MirostatV2TruncatesBySurpriseAndLearnsMu) {
  const auto logits = random_logits(64, kSeed + 2, 2.0f);
  SamplerOptions o = plain(1.0f);
  o.mirostat = 2;
  o.mirostat_tau = 2.0f;
  o.mirostat_eta = 0.25f;
  o.seed = kSeed;
  Sampler sampler(o);
  // Reference: keep -log2 p <= mu = 2 tau (the best always), renormalise.
  const auto p = softmax(logits, 1.0);
  const auto order = ids_by_probability(p);
  std::vector<double> want(p.size(), 0.0);
  double mass = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const double v = p[static_cast<size_t>(order[i])];
    if (i > 0 && -std::log2(v) > 4.0) break;
    want[static_cast<size_t>(order[i])] = v;
    mass += v;
  }
  for (auto& v : want) v /= mass;
  expect_near(dense(sampler.distribution(logits), p.size()), want);
  const int32_t id = sampler.sample(logits);
  ASSERT_GT(want[static_cast<size_t>(id)], 0.0) << "seed " << kSeed;
  const double expected_mu = 4.0 - 0.25 * (-std::log2(want[static_cast<size_t>(id)]) - 2.0);
  EXPECT_NEAR(sampler.mirostat_mu(), expected_mu, 1e-5);
}

TEST(Sampler, DryPenalisesTokensThatExtendARepeat) {
  const auto logits = random_logits(20, kSeed + 3);
  // The sequence ends in 5 6 7, which came before and was followed by 8: 8 would repeat a run
  // of 3. The 7 at index 5 was followed by 9: a run of 1.
  const std::vector<int32_t> history = {5, 6, 7, 8, 1, 7, 9, 2, 5, 6, 7};
  SamplerOptions o = plain(1.0f);
  o.dry_multiplier = 0.8f;
  o.dry_base = 1.75f;
  o.dry_allowed_length = 1;
  Sampler sampler(o);
  // Reference: brute force over every earlier position, in double.
  std::vector<int> longest(20, 0);
  const size_t n = history.size();
  for (size_t j = 0; j + 1 < n; ++j) {
    int length = 0;
    for (size_t k = 0; k <= j; ++k) {
      if (history[j - k] != history[n - 1 - k]) break;
      length = static_cast<int>(k) + 1;
    }
    auto& best = longest[static_cast<size_t>(history[j + 1])];
    best = std::max(best, length);
  }
  EXPECT_EQ(longest[8], 3);
  EXPECT_EQ(longest[9], 1);
  std::vector<float> adjusted(logits.begin(), logits.end());
  for (size_t id = 0; id < 20; ++id) {
    if (longest[id] >= 1) adjusted[id] -= static_cast<float>(0.8 * std::pow(1.75, longest[id] - 1));
  }
  expect_near(dense(sampler.distribution(logits, history), 20), softmax(adjusted, 1.0));
}

// Reference DRY lengths with breakers: brute force over every earlier position, each repeat
// capped at the tokens after the end of the latest complete breaker occurrence, found by
// trying every breaker at every position.
std::vector<int> dry_lengths(const std::vector<int32_t>& history,
                             const std::vector<std::vector<int32_t>>& breakers, size_t n_vocab) {
  const size_t n = history.size();
  size_t breaker_end = 0;
  for (size_t start = 0; start < n; ++start) {
    for (const auto& b : breakers) {
      if (start + b.size() <= n && std::equal(b.begin(), b.end(), history.begin() + start)) {
        breaker_end = std::max(breaker_end, start + b.size());
      }
    }
  }
  const size_t limit = n - breaker_end;
  std::vector<int> longest(n_vocab, 0);
  for (size_t j = 0; j + 1 < n; ++j) {
    size_t length = 0;
    while (length <= j && history[j - length] == history[n - 1 - length]) ++length;
    auto& best = longest[static_cast<size_t>(history[j + 1])];
    best = std::max(best, static_cast<int>(std::min(length, limit)));
  }
  return longest;
}

TEST(Sampler, DryRepeatsNeverReachBackIntoASequenceBreaker) {
  const auto logits = random_logits(20, kSeed + 4);
  // 5 6 7 8 repeats 5 6 7 and would go on with 8, but 13 (a breaker) sits inside the current
  // run: only "6 7" counts. 14 15 is a two-token breaker; 14 alone is none.
  const std::vector<std::vector<int32_t>> breakers = {{13}, {14, 15}};
  const std::vector<std::vector<int32_t>> histories = {
      {5, 6, 7, 8, 1, 5, 13, 6, 7},         // single-token breaker: repeat of 2
      {5, 6, 7, 8, 1, 14, 15, 5, 6, 7},     // two-token breaker before the run: 3
      {5, 6, 7, 8, 1, 5, 14, 15, 6, 7},     // two-token breaker inside: 2
      {5, 14, 6, 7, 8, 2, 5, 14, 6, 7},     // 14 without 15 is no breaker: 4
      {2, 5, 6, 7, 8, 1, 5, 6, 7, 14, 15},  // a breaker at the very end: nothing repeats
  };
  const std::vector<int> want_length_of_8 = {2, 3, 2, 4, 0};
  for (size_t h = 0; h < histories.size(); ++h) {
    SamplerOptions o = plain(1.0f);
    o.dry_multiplier = 0.8f;
    o.dry_base = 1.75f;
    o.dry_allowed_length = 2;
    o.dry_sequence_breakers = breakers;
    Sampler sampler(o);
    const auto longest = dry_lengths(histories[h], breakers, 20);
    EXPECT_EQ(longest[8], want_length_of_8[h]) << "history " << h;
    std::vector<float> adjusted(logits.begin(), logits.end());
    for (size_t id = 0; id < 20; ++id) {
      if (longest[id] >= 2) {
        adjusted[id] -= static_cast<float>(0.8 * std::pow(1.75, longest[id] - 2));
      }
    }
    expect_near(dense(sampler.distribution(logits, histories[h]), 20), softmax(adjusted, 1.0));
  }
}

TEST(Sampler, MirostatV1KeepsTheZipfEstimatedTopKAndLearnsMu) {
  for (const float tau : {1.0f, 3.0f, 5.0f}) {
    const auto logits = random_logits(300, kSeed + 5, 2.5f);
    SamplerOptions o = plain(1.0f);
    o.mirostat = 1;
    o.mirostat_tau = tau;
    o.mirostat_eta = 0.1f;
    Sampler sampler(o);
    // Reference (Basu et al. 2021, m = 100): least-squares Zipf exponent s over the 100 most
    // likely, k = (e 2^mu / (1 - N^-e))^(1/s) with e = s - 1 and mu = 2 tau, keep int(k).
    const auto p = softmax(logits, 1.0);
    const auto order = ids_by_probability(p);
    double tb = 0, tt = 0;
    for (size_t i = 0; i < 99; ++i) {
      const double t = std::log((i + 2.0) / (i + 1.0));
      tb += t * std::log(p[static_cast<size_t>(order[i])] / p[static_cast<size_t>(order[i + 1])]);
      tt += t * t;
    }
    const double s = tb / tt;
    const double e = s - 1;
    const double k = std::pow(e * std::pow(2.0, 2.0 * tau) / (1 - std::pow(300.0, -e)), 1 / s);
    const auto keep = static_cast<size_t>(std::clamp(k, 1.0, 300.0));
    std::vector<double> want(p.size(), 0.0);
    double mass = 0;
    for (size_t i = 0; i < keep; ++i) mass += want[static_cast<size_t>(order[i])] = p[order[i]];
    for (auto& v : want) v /= mass;
    expect_near(dense(sampler.distribution(logits), p.size()), want);
    const int32_t id = sampler.sample(logits);
    ASSERT_GT(want[static_cast<size_t>(id)], 0.0) << "tau " << tau << " seed " << kSeed;
    const double expected_mu = 2.0 * tau - 0.1 * (-std::log2(want[static_cast<size_t>(id)]) - tau);
    EXPECT_NEAR(sampler.mirostat_mu(), expected_mu, 1e-4) << "tau " << tau;
  }
}

TEST(Sampler, RejectsUnknownMirostatVersionsAndEmptyBreakers) {
  SamplerOptions o = plain(1.0f);
  o.mirostat = 3;
  EXPECT_THROW(Sampler{o}, Error);
  o.mirostat = 1;
  o.dry_sequence_breakers = {{}};
  EXPECT_THROW(Sampler{o}, Error);
}

}  // namespace
}  // namespace torchless
