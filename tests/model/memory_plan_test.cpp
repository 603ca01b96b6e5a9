// Transformer::memory_plan, the load-time memory check's input: the KV cache it predicts is
// the one KvCache allocates, and its scratch is the activations of one prompt batch (at most
// kMaxBatchTokens tokens) and of decode, plus the logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>

#include "model/reference_data.h"
#include "torchless/model/kv_cache.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

// Float activations per token as transformer.h lists them: x, xb, proj [n_embd]; q, att
// [n_heads * head_dim]; k, v [n_kv_heads * head_dim]; gate, up [n_ff]; plus one I32 id.
uint64_t activation_bytes_per_token(const ModelConfig& c) {
  const uint64_t q = static_cast<uint64_t>(c.n_heads) * static_cast<uint64_t>(c.head_dim);
  const uint64_t kv = static_cast<uint64_t>(c.n_kv_heads) * static_cast<uint64_t>(c.head_dim);
  const uint64_t floats =
      3 * static_cast<uint64_t>(c.n_embd) + 2 * q + 2 * kv + 2 * static_cast<uint64_t>(c.n_ff);
  return 4 * floats + 4;
}

TEST(TransformerMemoryPlan, MatchesTheCacheAndTheActivationsOfOneBatch) {
  const LoadedModel model = load_model(testing::require_shared("golden/llama/model-q8_0.gguf"));
  const ModelConfig& c = model.config;
  auto backend = init_backend("cpu");
  for (const DType kv_dtype : {DType::F32, DType::F16}) {
    for (const int n_ctx : {1, 64, kMaxBatchTokens + 100}) {
      const MemoryPlan plan = Transformer::memory_plan(model, n_ctx, kv_dtype);
      const KvCache cache(*backend, c, n_ctx, kv_dtype);
      EXPECT_EQ(plan.kv_cache_bytes, cache.bytes()) << dtype_name(kv_dtype) << " " << n_ctx;
      const uint64_t batch = static_cast<uint64_t>(std::min(n_ctx, kMaxBatchTokens));
      const uint64_t want = (batch + 1) * activation_bytes_per_token(c) +
                            (batch + 1) * static_cast<uint64_t>(c.n_vocab) * 4;
      EXPECT_EQ(plan.scratch_bytes, want) << dtype_name(kv_dtype) << " " << n_ctx;
      EXPECT_GT(plan.weight_bytes, 0u);
    }
  }
}

}  // namespace
}  // namespace torchless
