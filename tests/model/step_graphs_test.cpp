// Decoding with each step captured into a graph (CUDA graphs, Backend::begin_step) must give bit
// for bit the logits of the same ops issued one by one (BackendOptions::step_graphs = false):
// the graph replays the same kernels on the same buffers. Backends without graphs run both
// ways identically by construction.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/reference_data.h"
#include "torchless/core/error.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

// The logits of a short prompt and of 24 greedy decode steps after it.
std::vector<std::vector<float>> greedy_logits(const std::string& backend_name, bool graphs,
                                              const std::string& model_path) {
  BackendOptions options;
  options.step_graphs = graphs;
  const std::unique_ptr<Backend> backend = init_backend(backend_name, options);
  Transformer model(load_model(testing::require_shared(model_path)), *backend);
  KvCache cache(*backend, model.config(), 64);
  const std::vector<int32_t> prompt = {1, 5, 9, 2, 7};
  std::vector<std::vector<float>> all;
  auto logits = model.forward(prompt, 0, cache);
  all.emplace_back(logits.begin(), logits.end());
  for (int pos = static_cast<int>(prompt.size()); pos < static_cast<int>(prompt.size()) + 24;
       ++pos) {
    const auto next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = model.forward(std::span(&next, 1), pos, cache);
    all.emplace_back(logits.begin(), logits.end());
  }
  return all;
}

class StepGraphs : public ::testing::TestWithParam<std::string> {};

TEST_P(StepGraphs, GraphedDecodeGivesTheLogitsOfOpByOpDecode) {
  try {
    init_backend(GetParam());
  } catch (const Error& e) {
    GTEST_SKIP() << "backend " << GetParam() << " is unavailable: " << e.what();
  }
  for (const std::string model : {"models/stories260K.gguf", "golden/llama/model-q4_0.gguf",
                                  "golden/qwen2/model-q4_k.gguf", "golden/llama/model-f32.gguf"}) {
    const auto graphed = greedy_logits(GetParam(), true, model);
    const auto op_by_op = greedy_logits(GetParam(), false, model);
    ASSERT_EQ(graphed.size(), op_by_op.size());
    for (size_t i = 0; i < graphed.size(); ++i) {
      EXPECT_EQ(graphed[i], op_by_op[i]) << model << ", step " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StepGraphs, ::testing::Values("cpu", "cuda"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace torchless
