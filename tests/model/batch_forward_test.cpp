// Transformer::forward_batch over a paged KV cache: a sequence's logits are bit for bit the same
// alone or batched with 15 others at any position in the batch (prefill and decode), and equal
// to the contiguous forward() of the same tokens. stories260K (F32 weights) and a random
// model with F16 weights, GQA and a sliding window (the F16 dot kernels), per backend, with an
// F16 KV cache; and a random model with heads of 32 over a Q8_0 KV cache where the backend has
// Q8_0 pools.
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/backend_availability.h"
#include "common/small_random_model.h"
#include "common/temp_dir.h"
#include "model/reference_data.h"
#include "torchless/core/error.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

constexpr int kSequences = 16;

struct ModelSource {
  std::string name;
  std::filesystem::path path;
};

// The shared small model's heads of 32 over a Q8_0 cache (whole blocks of 32); 4 heads of 16
// sharing 2 KV heads over an F16 one.
std::filesystem::path random_model(const test::TempDir& dir, DType kv) {
  auto spec = test::small_random_model_spec(/*sliding_window=*/9, /*seed=*/77);
  if (kv != DType::Q8_0) {
    spec.config.n_heads = 4;
    spec.config.n_kv_heads = 2;
    spec.config.head_dim = 16;
  }
  return test::write_random_model_in(dir, spec);
}

// Sequence s: a prompt of 2 + 3 s tokens (awkward lengths, some over a block), seed 100 + s.
std::vector<std::vector<int32_t>> prompts(int n_vocab) {
  std::vector<std::vector<int32_t>> all;
  for (int s = 0; s < kSequences; ++s) {
    std::mt19937 rng(static_cast<unsigned>(100 + s));
    std::uniform_int_distribution<int32_t> dist(1, n_vocab - 1);
    std::vector<int32_t> p(static_cast<size_t>(2 + 3 * s));
    for (auto& t : p) t = dist(rng);
    all.push_back(std::move(p));
  }
  return all;
}

// (backend, stories260K or the random model, KV cache type)
class BatchForward : public ::testing::TestWithParam<std::tuple<std::string_view, bool, DType>> {
 protected:
  void SetUp() override {
    const auto [backend_name, stories, kv] = GetParam();
    if (const auto why = test::backend_unavailable(backend_name)) GTEST_SKIP() << *why;
    BackendOptions options;
    options.batch_invariant = true;
    backend_ = init_backend(backend_name, options);
    if (!backend_->supports_paged_kv_dtype(kv)) {
      GTEST_SKIP() << "backend " << backend_name << " has no " << dtype_name(kv) << " pools";
    }
    kv_ = kv;
    const auto path =
        stories ? testing::require_shared("models/stories260K.gguf") : random_model(dir_, kv);
    model_ = std::make_unique<Transformer>(load_model(path), *backend_);
  }

  struct Runner {
    Transformer& model;
    PagedKvCache cache;
    std::vector<std::vector<int32_t>> tables;
    int next_block = 0;

    // Runs `order`'s sequences (chunk: their tokens at `first[s]..`) in one pass and returns
    // each one's last-token logits, indexed by sequence.
    std::vector<std::vector<float>> pass(const std::vector<int>& order,
                                         const std::vector<std::vector<int32_t>>& tokens,
                                         const std::vector<int>& first) {
      std::vector<int32_t> ids, seqs, positions, rows;
      for (int s : order) {
        const auto& t = tokens[static_cast<size_t>(s)];
        for (int p = first[static_cast<size_t>(s)]; p < static_cast<int>(t.size()); ++p) {
          auto& table = tables[static_cast<size_t>(s)];
          while (static_cast<int>(table.size()) * cache.block_size() <= p) {
            table.push_back(next_block++);
          }
          ids.push_back(t[static_cast<size_t>(p)]);
          seqs.push_back(s);
          positions.push_back(p);
        }
        rows.push_back(static_cast<int32_t>(ids.size()) - 1);
      }
      TokenBatch b{ids, seqs, positions, tables, rows};
      const auto logits = model.forward_batch(b, cache);
      const auto n_vocab = static_cast<size_t>(model.config().n_vocab);
      std::vector<std::vector<float>> out(tokens.size());
      for (size_t i = 0; i < order.size(); ++i) {
        out[static_cast<size_t>(order[i])].assign(
            logits.begin() + static_cast<ptrdiff_t>(i * n_vocab),
            logits.begin() + static_cast<ptrdiff_t>((i + 1) * n_vocab));
      }
      return out;
    }
  };

  Runner runner() {
    return Runner{*model_, PagedKvCache(*backend_, model_->config(), 64, 16, kv_),
                  std::vector<std::vector<int32_t>>(kSequences)};
  }

  test::TempDir dir_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Transformer> model_;
  DType kv_ = DType::F16;
};

TEST_P(BatchForward, LogitsAreBitIdenticalAloneOrBatchedAtAnyPosition) {
  auto tokens = prompts(model_->config().n_vocab);
  // Alone: each sequence's prompt in its own pass, then one decode token in its own pass.
  Runner alone = runner();
  std::vector<std::vector<float>> prefill_alone(kSequences), decode_alone(kSequences);
  std::vector<int> zero(kSequences, 0);
  for (int s = 0; s < kSequences; ++s) {
    prefill_alone[static_cast<size_t>(s)] = alone.pass({s}, tokens, zero)[static_cast<size_t>(s)];
  }
  std::vector<int> decode_first(kSequences);
  for (int s = 0; s < kSequences; ++s) {
    tokens[static_cast<size_t>(s)].push_back(static_cast<int32_t>(7 + s));
    decode_first[static_cast<size_t>(s)] =
        static_cast<int>(tokens[static_cast<size_t>(s)].size()) - 1;
  }
  for (int s = 0; s < kSequences; ++s) {
    decode_alone[static_cast<size_t>(s)] =
        alone.pass({s}, tokens, decode_first)[static_cast<size_t>(s)];
  }
  // Batched: all prompts in one pass in a shuffled order, then all decode tokens reversed.
  Runner batched = runner();
  std::vector<int> order(kSequences);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  std::vector<std::vector<int32_t>> prompts_only = tokens;
  for (auto& p : prompts_only) p.pop_back();
  const auto prefill_batched = batched.pass(order, prompts_only, zero);
  std::reverse(order.begin(), order.end());
  const auto decode_batched = batched.pass(order, tokens, decode_first);
  for (int s = 0; s < kSequences; ++s) {
    const auto i = static_cast<size_t>(s);
    EXPECT_EQ(prefill_alone[i], prefill_batched[i]) << "prefill logits of sequence " << s;
    EXPECT_EQ(decode_alone[i], decode_batched[i]) << "decode logits of sequence " << s;
  }
}

TEST_P(BatchForward, MatchesTheContiguousForwardPass) {
  const auto tokens = prompts(model_->config().n_vocab);
  Runner r = runner();
  std::vector<int> order(kSequences);
  std::iota(order.begin(), order.end(), 0);
  const auto batched = r.pass(order, tokens, std::vector<int>(kSequences, 0));
  for (int s : {0, 5, 15}) {
    const auto& t = tokens[static_cast<size_t>(s)];
    KvCache cache(*backend_, model_->config(), 64, kv_);
    const auto logits = model_->forward(t, 0, cache);
    const auto& got = batched[static_cast<size_t>(s)];
    ASSERT_EQ(got.size(), logits.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], logits[i], 1e-4) << "sequence " << s << " logit " << i;
    }
  }
}

TEST_P(BatchForward, RejectsPositionsWithoutBlocks) {
  Runner r = runner();
  const std::vector<int32_t> ids = {1}, seqs = {0}, positions = {0}, rows = {0};
  TokenBatch b{ids, seqs, positions, r.tables, rows};  // sequence 0 has no block
  EXPECT_THROW(model_->forward_batch(b, r.cache), Error);
}

std::string name_of(const ::testing::TestParamInfo<BatchForward::ParamType>& info) {
  std::string backend(std::get<0>(info.param));
  std::replace(backend.begin(), backend.end(), '-', '_');
  const std::string kv = std::get<2>(info.param) == DType::F16 ? "" : "_kv_q8_0";
  return backend + (std::get<1>(info.param) ? "_stories260K" : "_random_f16") + kv;
}

// The emulated Metal device runs the small random model only: stories260K takes it ~20 s.
INSTANTIATE_TEST_SUITE_P(Cpu, BatchForward,
                         ::testing::Combine(::testing::Values("cpu"), ::testing::Bool(),
                                            ::testing::Values(DType::F16)),
                         name_of);
INSTANTIATE_TEST_SUITE_P(Metal, BatchForward,
                         ::testing::Combine(::testing::Values("metal-emulated"),
                                            ::testing::Values(false),
                                            ::testing::Values(DType::F16)),
                         name_of);
INSTANTIATE_TEST_SUITE_P(Cuda, BatchForward,
                         ::testing::Combine(::testing::Values("cuda"), ::testing::Bool(),
                                            ::testing::Values(DType::F16)),
                         name_of);
// Q8_0 pools: the random model with heads of 32 (stories260K's are 8 wide).
INSTANTIATE_TEST_SUITE_P(Q8_0, BatchForward,
                         ::testing::Combine(::testing::Values("cpu", "cuda"),
                                            ::testing::Values(false),
                                            ::testing::Values(DType::Q8_0)),
                         name_of);

}  // namespace
}  // namespace torchless
