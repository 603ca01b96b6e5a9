// Tensor parallelism on the CPU (docs/multi-gpu.md): a model split over N = 2 and 4 ranks (one
// CPU backend and thread per rank, ThreadCommunicator) gives the logits of the unsplit model, on
// the golden models and on random models with F32, F16, Q8_0 and Q4_0 weights, for a prompt
// (every row's logits) and greedy decode steps. Shapes that do not split are refused, naming the
// N that would work. The `cuda` instance runs the same over NCCL where the GPUs exist.
//
// Tolerance: the ranks' partial products are summed in another order than one rank's dot
// product, so float32 rounding differs: per row max|a - b| <= 2e-5 * max|b|. Measured worst
// case on this suite: rel 1e-6 (max_abs 1.8e-5, qwen2 f32 decode), so a 20x margin; argmax
// never differs.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "model/reference_data.h"
#include "torchless/backends/communicator.h"
#include "torchless/core/error.h"
#include "torchless/formats/random_model_writer.h"
#include "torchless/model/tensor_parallel.h"
#include "torchless/model/tensor_parallel_group.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

constexpr double kSplitRel = 2e-5;
constexpr int kDecodeSteps = 4;

struct Logits {
  std::vector<float> prompt;  // [n_prompt, n_vocab]
  std::vector<float> decode;  // [kDecodeSteps, n_vocab], greedy
};

TensorParallelOptions split(const std::string& backend, int n) {
  TensorParallelOptions tp;
  tp.size = n;
  tp.make_backend = [backend](int rank) {
    BackendOptions options;
    options.threads = 1;
    return make_rank_backend(backend, options, rank);
  };
  return tp;
}

// The prompt's logits, then kDecodeSteps greedy tokens one at a time.
Logits run(Transformer& model, const std::vector<int32_t>& prompt) {
  auto cache = model.new_kv_cache(64, DType::F32);
  Logits out;
  const auto all = model.forward(prompt, 0, *cache, LogitsMode::All);
  out.prompt.assign(all.begin(), all.end());
  const size_t n_vocab = static_cast<size_t>(model.config().n_vocab);
  std::span<const float> last = all.last(n_vocab);
  int pos = static_cast<int>(prompt.size());
  for (int step = 0; step < kDecodeSteps; ++step) {
    const int32_t next = testing::argmax(last);
    last = model.forward(std::span(&next, 1), pos++, *cache, LogitsMode::Last);
    out.decode.insert(out.decode.end(), last.begin(), last.end());
  }
  return out;
}

Logits run_split(const std::string& backend, const std::filesystem::path& path, int n,
                 const std::vector<int32_t>& prompt) {
  BackendOptions options;
  options.threads = 1;
  auto rank0 = init_backend(backend, options);
  Transformer model(load_model(path), *rank0, split(backend, n));
  EXPECT_EQ(model.tensor_parallel(), n);
  return run(model, prompt);
}

void expect_same_logits(const Logits& split_run, const Logits& whole, size_t n_vocab) {
  const auto prompt = testing::compare_logits(split_run.prompt, whole.prompt, n_vocab);
  EXPECT_LE(prompt.rel, kSplitRel) << "prompt: " << testing::describe(prompt);
  EXPECT_EQ(prompt.argmax_diff, 0) << testing::describe(prompt);
  const auto decode = testing::compare_logits(split_run.decode, whole.decode, n_vocab);
  std::printf("[ measured ] prompt %s; decode %s\n", testing::describe(prompt).c_str(),
              testing::describe(decode).c_str());
  EXPECT_LE(decode.rel, kSplitRel) << "decode: " << testing::describe(decode);
  EXPECT_EQ(decode.argmax_diff, 0) << testing::describe(decode);
}

std::vector<int32_t> random_prompt(int n, int n_vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, n_vocab - 1);
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (auto& t : p) t = dist(rng);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Golden models (2 KV heads: N = 2).

struct GoldenCase {
  std::string file;  // under ../shared/golden
};

class TensorParallelGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(TensorParallelGolden, TwoRanksMatchOne) {
  const auto path = testing::require_shared("golden/" + GetParam().file);
  const auto dir = path.has_extension() ? path.parent_path() : path;
  const auto tokens =
      testing::read_json(dir / "tokens.json").at("tokens").get<std::vector<int32_t>>();
  auto backend = init_backend("cpu");
  Transformer whole_model(load_model(path), *backend);
  const Logits whole = run(whole_model, tokens);
  const Logits two = run_split("cpu", path, 2, tokens);
  expect_same_logits(two, whole, static_cast<size_t>(whole_model.config().n_vocab));
}

INSTANTIATE_TEST_SUITE_P(
    Models, TensorParallelGolden,
    ::testing::Values(GoldenCase{"llama/model-f32.gguf"}, GoldenCase{"llama/model-q8_0.gguf"},
                      GoldenCase{"llama/model-q4_0.gguf"}, GoldenCase{"qwen2/model-f32.gguf"},
                      GoldenCase{"qwen2/model-q4_0.gguf"}, GoldenCase{"qwen3/model-f32.gguf"},
                      GoldenCase{"llama3-ropescaling/model-f32.gguf"}, GoldenCase{"mistral-swa"}),
    [](const auto& info) {
      std::string name = info.param.file;
      std::replace_if(
          name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
      return name;
    });

// ---------------------------------------------------------------------------------------------
// A Llama-3.2-1B-like shape scaled down (GQA 4:1 with 4 KV heads, so N = 4 splits it), with
// widths that hold whole Q4_0/Q8_0 blocks per rank.

ModelConfig small_1b_like() {
  ModelConfig c = llama_1b_like_config();
  c.n_vocab = 512;
  c.n_embd = 128;
  c.n_ff = 512;
  c.n_layers = 2;
  c.n_heads = 16;
  c.n_kv_heads = 4;
  c.head_dim = 8;
  c.n_ctx_train = 128;
  return c;
}

struct RandomCase {
  DType dtype;
  int ranks;
};

class TensorParallelRandom : public ::testing::TestWithParam<RandomCase> {};

TEST_P(TensorParallelRandom, SplitMatchesWhole) {
  const auto [dtype, ranks] = GetParam();
  test::TempDir dir;
  RandomModelSpec spec;
  spec.config = small_1b_like();
  spec.weight_dtype = dtype;
  spec.seed = 15;
  const auto path = dir / "random.gguf";
  write_random_model(spec, path);
  const auto prompt = random_prompt(19, spec.config.n_vocab, 7);
  auto backend = init_backend("cpu");
  Transformer whole_model(load_model(path), *backend);
  const Logits whole = run(whole_model, prompt);
  const Logits split_run = run_split("cpu", path, ranks, prompt);
  expect_same_logits(split_run, whole, static_cast<size_t>(spec.config.n_vocab));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, TensorParallelRandom,
                         ::testing::Values(RandomCase{DType::F32, 2}, RandomCase{DType::F32, 4},
                                           RandomCase{DType::F16, 4}, RandomCase{DType::Q8_0, 2},
                                           RandomCase{DType::Q8_0, 4}, RandomCase{DType::Q4_0, 2},
                                           RandomCase{DType::Q4_0, 4}),
                         [](const auto& info) {
                           return std::string(dtype_name(info.param.dtype)) + "_x" +
                                  std::to_string(info.param.ranks);
                         });

TEST(TensorParallel, SplitLogitsDoNotDependOnThreadTiming) {
  // ThreadCommunicator sums in rank order: two runs of the split model agree bit for bit.
  const auto path = testing::require_shared("golden/qwen2/model-f32.gguf");
  const auto tokens = random_prompt(11, 1024, 3);
  const Logits first = run_split("cpu", path, 2, tokens);
  const Logits second = run_split("cpu", path, 2, tokens);
  EXPECT_EQ(first.prompt, second.prompt);
  EXPECT_EQ(first.decode, second.decode);
}

TEST(TensorParallel, ARankThatFailsStopsTheGroupInsteadOfHanging) {
  const auto path = testing::require_shared("golden/llama/model-f32.gguf");
  auto backend = init_backend("cpu");
  Transformer model(load_model(path), *backend, split("cpu", 2));
  auto cache = model.new_kv_cache(64, DType::F32);
  const std::vector<int32_t> prompt = {1, 5, 9};
  model.forward(prompt, 0, *cache);
  // Rank 1 alone forgets positions 1 and 2: it fails its position check while rank 0 waits in
  // the first all-reduce, which the failure must release.
  cache->rank(1).truncate(1);
  const int32_t next = 7;
  try {
    model.forward(std::span(&next, 1), 3, *cache);
    FAIL() << "a failed rank went unnoticed";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "position 3 does not continue the 1 tokens in the KV cache");
  }
  try {
    model.forward(std::span(&next, 1), 3, *cache);
    FAIL() << "the group ran on after a failure";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("group stopped after an error"), std::string::npos)
        << e.what();
  }
}

TEST(TensorParallel, MemoryPlanIsPerRank) {
  const LoadedModel model = load_model(testing::require_shared("golden/llama/model-f32.gguf"));
  const MemoryPlan whole = Transformer::memory_plan(model, 64, DType::F16);
  const MemoryPlan half = Transformer::memory_plan(model, 64, DType::F16, 2);
  EXPECT_EQ(half.weight_bytes, whole.weight_bytes / 2);
  EXPECT_EQ(half.kv_cache_bytes, whole.kv_cache_bytes / 2);
}

// ---------------------------------------------------------------------------------------------
// Refusals and slicing.

std::string split_error(const std::filesystem::path& path, int n) {
  try {
    check_tensor_parallel(load_model(path), n);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TensorParallel, RefusesMoreRanksThanKvHeads) {
  const auto path = testing::require_shared("golden/llama/model-f32.gguf");
  const std::string e = split_error(path, 4);
  EXPECT_NE(e.find("--tensor-parallel 4 cannot split"), std::string::npos) << e;
  EXPECT_NE(e.find("its 2 KV heads do not split over 4 ranks"), std::string::npos) << e;
  EXPECT_NE(e.find("it splits over N = 1, 2"), std::string::npos) << e;
  EXPECT_EQ(split_error(path, 2), "");
  EXPECT_NE(split_error(path, 0).find("at least 1"), std::string::npos);
}

TEST(TensorParallel, RefusesColumnSlicesThatCutQuantBlocks) {
  // Q4_K_M: Wo has 4 x 64 = 256 columns, one 256-value block per row, which 2 ranks would cut.
  const auto path = testing::require_shared("golden/qwen2/model-q4_k.gguf");
  const std::string e = split_error(path, 2);
  EXPECT_NE(e.find("whole 256-value blocks"), std::string::npos) << e;
  EXPECT_NE(e.find("it splits over N = 1"), std::string::npos) << e;
}

TEST(TensorParallel, RefusesAtLoadThroughTheTransformer) {
  const auto path = testing::require_shared("golden/llama/model-f32.gguf");
  auto backend = init_backend("cpu");
  EXPECT_THROW(Transformer(load_model(path), *backend, split("cpu", 3)), Error);
}

TEST(TensorParallel, RowSlicesAreViewsAndColumnSlicesCopies) {
  const LoadedModel model = load_model(testing::require_shared("golden/llama/model-q8_0.gguf"));
  WeightStore keep;
  const HostTensorView& wq = model.weights.get("blk.0.attn_q.weight");  // [256, 256] Q8_0
  const HostTensorView rows = shard_matrix("wq", wq, Split::Rows, 1, 2, keep);
  EXPECT_EQ(rows.shape, (Shape{128, 256}));
  EXPECT_EQ(rows.data, wq.data + wq.nbytes / 2);  // in place: no copy
  const HostTensorView cols = shard_matrix("wq", wq, Split::Cols, 1, 2, keep);
  EXPECT_EQ(cols.shape, (Shape{256, 128}));
  const size_t half_row = dtype_row_bytes(DType::Q8_0, 128);
  for (int64_t r = 0; r < 256; r += 51) {
    EXPECT_EQ(0, std::memcmp(cols.data + static_cast<size_t>(r) * half_row,
                             wq.data + static_cast<size_t>(r) * 2 * half_row + half_row, half_row));
  }
  EXPECT_THROW(shard_matrix("wq", wq, Split::Cols, 0, 16, keep), Error);  // 16 values: half a block
}

TEST(TensorParallel, ForwardBatchIsRefused) {
  const auto path = testing::require_shared("golden/llama/model-f32.gguf");
  auto backend = init_backend("cpu");
  Transformer model(load_model(path), *backend, split("cpu", 2));
  PagedKvCache cache(*backend, model.config(), 4);
  TokenBatch batch;
  EXPECT_THROW(model.forward_batch(batch, cache), Error);
}

// ---------------------------------------------------------------------------------------------
// CUDA over NCCL: N = 1 (a group of one, so the collectives run) and N = 2, 4 where the GPUs
// exist. Label `cuda` (the name); skips without a device.

TEST(TensorParallel, logits_over_nccl_on_cuda) {
  const int gpus = tensor_parallel_capacity("cuda");
  if (gpus < 1) GTEST_SKIP() << "no CUDA device";
  test::TempDir dir;
  RandomModelSpec spec;
  spec.config = small_1b_like();
  spec.weight_dtype = DType::Q8_0;
  const auto path = dir / "random.gguf";
  write_random_model(spec, path);
  const auto prompt = random_prompt(19, spec.config.n_vocab, 7);
  // The reference is the unsplit model on the same GPU (same kernels): a group of one must give
  // its logits; the CPU differs by CUDA's own rounding (int8 and F16 activations).
  auto unsplit = init_backend("cuda");
  Transformer reference_model(load_model(path), *unsplit);
  const Logits reference = run(reference_model, prompt);
  const auto n_vocab = static_cast<size_t>(spec.config.n_vocab);
  {
    auto gpu = init_backend("cuda");
    TensorParallelGroup one(load_model(path), *gpu, split("cuda", 1));
    auto cache = one.new_kv_cache(64, DType::F32);
    const auto all = one.forward(prompt, 0, *cache, LogitsMode::All);
    const auto d = testing::compare_logits(all, reference.prompt, n_vocab);
    EXPECT_LE(d.rel, 1e-3) << "N = 1 over NCCL vs unsplit CUDA: " << testing::describe(d);
  }
  for (const int n : {2, 4}) {
    if (n > gpus) {
      std::printf("[ SKIPPED  ] N = %d: %d GPU(s)\n", n, gpus);
      continue;
    }
    const Logits split_run = run_split("cuda", path, n, prompt);
    const auto d = testing::compare_logits(split_run.prompt, reference.prompt, n_vocab);
    EXPECT_LE(d.rel, 1e-3) << "N = " << n << " on CUDA vs unsplit CUDA: " << testing::describe(d);
  }
}

}  // namespace
}  // namespace torchless
