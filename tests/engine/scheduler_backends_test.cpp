// make_scheduler on the backends with paged attention (CPU, CUDA) over F16 and Q8_0 caches: it
// picks the continuous-batching scheduler, and with batch-invariant kernels (serve
// --deterministic) a request's greedy tokens are the same alone as with others in flight (long
// prompts prefilled in chunks beside decoding ones). A random model with heads of 32, GQA and
// a sliding window, so that Q8_0 blocks fit its heads.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/backend_availability.h"
#include "common/small_random_model.h"
#include "common/temp_dir.h"
#include "torchless/engine/batch_scheduler.h"
#include "torchless/engine/scheduler_factory.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

// The tokens of requests run on one scheduler at once, in submission order.
class Runs {
 public:
  std::vector<std::vector<int32_t>> run(Scheduler& scheduler,
                                        const std::vector<std::vector<int32_t>>& prompts) {
    tokens_.assign(prompts.size(), {});
    ended_ = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      SequenceRequest r;
      r.prompt = prompts[i];
      r.sampling = SamplerOptions::greedy();
      r.max_tokens = 12;
      r.stop_at_end_of_generation = false;
      SequenceCallbacks cb;
      cb.on_token = [this, i](const SequenceToken& t) {
        std::lock_guard lock(mutex_);
        tokens_[i].push_back(t.id);
        return true;
      };
      cb.on_end = [this](const SequenceSummary&) {
        std::lock_guard lock(mutex_);
        ++ended_;
        done_.notify_all();
      };
      scheduler.submit(std::move(r), std::move(cb));
    }
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(
        done_.wait_for(lock, std::chrono::seconds(300), [&] { return ended_ == prompts.size(); }));
    return tokens_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::vector<std::vector<int32_t>> tokens_;
  size_t ended_ = 0;
};

class SchedulerBackends : public ::testing::TestWithParam<std::tuple<std::string_view, DType>> {
 protected:
  void SetUp() override {
    const auto [name, kv] = GetParam();
    if (const auto why = test::backend_unavailable(name)) GTEST_SKIP() << *why;
    BackendOptions options;
    options.batch_invariant = true;
    backend_ = init_backend(name, options);
    const auto path = test::write_random_model_in(
        dir_, test::small_random_model_spec(/*sliding_window=*/21, /*seed=*/91));
    model_ = std::make_unique<Transformer>(load_model(path), *backend_);
    options_.slots = 3;  // the fourth request waits for a slot
    options_.n_ctx = 96;
    options_.kv_dtype = kv;
    options_.max_batch_tokens = 16;
  }

  test::TempDir dir_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Transformer> model_;
  SchedulerOptions options_;
};

TEST_P(SchedulerBackends, BatchesAndGivesEachRequestItsTokensAlone) {
  std::vector<std::vector<int32_t>> prompts;
  for (int length : {3, 37, 20, 9}) {
    std::mt19937 rng(static_cast<unsigned>(400 + length));
    std::vector<int32_t> p(static_cast<size_t>(length));
    for (auto& t : p) t = static_cast<int32_t>(1 + rng() % 299);
    prompts.push_back(std::move(p));
  }
  Runs runs;
  std::vector<std::vector<int32_t>> together;
  {
    auto scheduler = make_scheduler(*model_, nullptr, options_);
    ASSERT_NE(dynamic_cast<BatchScheduler*>(scheduler.get()), nullptr);
    together = runs.run(*scheduler, prompts);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto scheduler = make_scheduler(*model_, nullptr, options_);
    const auto alone = runs.run(*scheduler, {prompts[i]});
    ASSERT_EQ(together[i].size(), 12u) << "prompt " << i;
    EXPECT_EQ(alone[0], together[i]) << "prompt " << i << " of length " << prompts[i].size();
  }
}

std::string name_of(const ::testing::TestParamInfo<SchedulerBackends::ParamType>& info) {
  return std::string(std::get<0>(info.param)) + "_kv_" +
         (std::get<1>(info.param) == DType::F16 ? "f16" : "q8_0");
}

INSTANTIATE_TEST_SUITE_P(Backends, SchedulerBackends,
                         ::testing::Combine(::testing::Values("cpu", "cuda"),
                                            ::testing::Values(DType::F16, DType::Q8_0)),
                         name_of);

}  // namespace
}  // namespace torchless
