#include "torchless/model/transformer.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "model/reference_data.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

struct Fixture {
  std::unique_ptr<Backend> backend = init_backend("cpu");
  std::unique_ptr<Transformer> model;
  explicit Fixture(const std::string& golden_config) {
    model = std::make_unique<Transformer>(
        load_model(testing::require_shared("golden/" + golden_config + "/model-f32.gguf")),
        *backend);
  }
};

std::vector<int32_t> random_tokens(size_t n, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, n_vocab - 1);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = dist(rng);
  return ids;
}

// Prompts longer than kMaxBatchTokens run in several batches; where the batches are cut must
// not matter.
TEST(Transformer, LongPromptsGiveTheSameLogitsWhereverBatchesAreCut) {
  Fixture f("qwen2");
  const int n_vocab = f.model->config().n_vocab;
  const auto tokens = random_tokens(kMaxBatchTokens + 19, n_vocab, 4242);
  KvCache one(*f.backend, f.model->config(), 600);
  const auto all = f.model->forward(tokens, 0, one, LogitsMode::All);
  const std::vector<float> whole(all.begin(), all.end());

  KvCache two(*f.backend, f.model->config(), 600);
  const std::span<const int32_t> ids(tokens);
  const size_t split = 300;
  const auto head = f.model->forward(ids.first(split), 0, two, LogitsMode::All);
  std::vector<float> pieces(head.begin(), head.end());
  const auto tail =
      f.model->forward(ids.subspan(split), static_cast<int>(split), two, LogitsMode::All);
  pieces.insert(pieces.end(), tail.begin(), tail.end());
  const auto d = testing::compare_logits(pieces, whole, static_cast<size_t>(n_vocab));
  EXPECT_LE(d.rel, 1e-5) << testing::describe(d);
  EXPECT_EQ(d.argmax_diff, 0);
}

TEST(Transformer, TokensBeyondTheContextAreAnError) {
  Fixture f("llama");
  KvCache cache(*f.backend, f.model->config(), 8);
  const auto tokens = random_tokens(9, f.model->config().n_vocab, 7);
  EXPECT_THROW(f.model->forward(tokens, 0, cache), Error);
  const std::span<const int32_t> ids(tokens);
  f.model->forward(ids.first(6), 0, cache);
  EXPECT_THROW(f.model->forward(ids.first(3), 6, cache), Error);  // 6 + 3 > 8
  EXPECT_THROW(f.model->forward(ids.first(1), 7, cache), Error);  // skips position 6
  EXPECT_NO_THROW(f.model->forward(ids.first(2), 6, cache));
  EXPECT_EQ(cache.size(), 8);
}

TEST(Transformer, EmptyInputAndUnknownIdsAreErrors) {
  Fixture f("llama");
  KvCache cache(*f.backend, f.model->config(), 8);
  EXPECT_THROW(f.model->forward({}, 0, cache), Error);
  const std::vector<int32_t> negative = {1, -3};
  EXPECT_THROW(f.model->forward(negative, 0, cache), Error);
  EXPECT_EQ(cache.size(), 0);
}

// Q8_0 stores 32 values in 34 bytes (an F16 scale and 32 int8 codes) instead of 128.
TEST(KvCache, F16HalvesTheMemoryAndQ8_0TakesBlocksOf34Bytes) {
  Fixture f("qwen3");
  KvCache f32(*f.backend, f.model->config(), 100, DType::F32);
  KvCache f16(*f.backend, f.model->config(), 100, DType::F16);
  KvCache q8(*f.backend, f.model->config(), 100, DType::Q8_0);
  const auto& c = f.model->config();
  EXPECT_EQ(f32.bytes(), static_cast<size_t>(2 * c.n_layers * 100 * c.n_kv_heads * c.head_dim) * 4);
  EXPECT_EQ(f16.bytes() * 2, f32.bytes());
  EXPECT_EQ(q8.bytes() * 128, f32.bytes() * 34);
  EXPECT_THROW(KvCache(*f.backend, c, 10, DType::Q4_0), Error);
  ModelConfig odd = c;
  odd.head_dim = 48;  // blocks of 32 would straddle heads
  EXPECT_THROW(KvCache(*f.backend, odd, 10, DType::Q8_0), Error);
}

}  // namespace
}  // namespace torchless
