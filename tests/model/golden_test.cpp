// Golden tests: the five random-weight models of ../shared/golden against Hugging Face's fp32
// logits (from safetensors and from the f32 GGUF) and the quantised GGUFs against llama.cpp.
// Tolerances are the README's; see there for how they were measured.
#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/golden_backends.h"
#include "model/reference_data.h"
#include "torchless/backends/backend.h"
#include "torchless/formats/model_loader.h"
#include "torchless/model/kv_cache.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

using testing::compare_logits;
using testing::describe;
using testing::GoldenBackend;
using testing::GoldenCoverage;

// fp32 engine vs HF fp32: per row max|a-b| <= 1e-4 * max|b_row| (30x the worst legitimate
// float32 difference measured between implementations); 5e-3 with an F16 KV cache.
constexpr double kF32Rel = 1e-4;
constexpr double kF16KvRel = 5e-3;
// Q8_0 KV cache vs F32 KV cache, same engine and backend, prefill and greedy decode rows:
// worst measured rel 4.0e-2 (rel_l2 2.8e-2) over the 10 cases (cpu all, metal-emulated llama),
// ~15x the F16 cache's error as Q8_0's step (amax / 127) is to F16's (2^-11 relative); the
// large random weights of these models amplify key errors through sharp attention. A near
// tie may flip one prompt row's argmax (measured: at most 1 of 24).
constexpr double kQ8KvRel = 6e-2;
constexpr int kQ8KvArgmaxFlips = 1;
// Decode (matmul_vec, one token at a time) against one batched pass (matmul) over the same
// tokens: only the summation order differs on the CPU and Metal (1e-3). On CUDA the two round
// differently (docs/cuda.md): decode quantises the activations to int8 blocks of 32 for its
// dp4a mat-vecs (as llama.cpp's MMVQ does), the batched pass rounds activations and
// dequantised weights to F16 for its tensor cores. Measured on an H100: rel 3.0e-2 to 3.6e-2
// over the four cases, no argmax flip in the decoded rows but one; an 8-bit step (amax / 127),
// so the Q8_0 KV cache's bound applies.
double decode_vs_batch_bound(const std::string& backend) {
  return backend == "cuda" ? kQ8KvRel : 1e-3;
}

struct Model {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Transformer> transformer;
  std::unique_ptr<KvCache> cache;
  int n_vocab() const { return transformer->config().n_vocab; }
};

Model open_model(const std::string& backend, const std::filesystem::path& path,
                 DType kv_dtype = DType::F32) {
  Model m;
  m.backend = init_backend(backend);
  m.transformer = std::make_unique<Transformer>(load_model(path), *m.backend);
  m.cache = std::make_unique<KvCache>(*m.backend, m.transformer->config(), 64, kv_dtype);
  return m;
}

std::vector<float> prefill_all(Model& m, const std::vector<int32_t>& tokens) {
  const auto logits = m.transformer->forward(tokens, 0, *m.cache, LogitsMode::All);
  return {logits.begin(), logits.end()};
}

struct GoldenReference {
  std::vector<int32_t> tokens;
  std::vector<int32_t> greedy;
  nlohmann::json json;
  std::filesystem::path dir;
};

GoldenReference golden_reference(const std::string& config) {
  GoldenReference r;
  r.dir = testing::require_shared("golden/" + config);
  r.json = testing::read_json(testing::require_shared("golden/" + config + "/tokens.json"));
  r.tokens = r.json.at("tokens").get<std::vector<int32_t>>();
  r.greedy = r.json.at("greedy").get<std::vector<int32_t>>();
  return r;
}

// ---------------------------------------------------------------------------------------------
// F32 models: from safetensors (the directory) and from model-f32.gguf.

struct F32Case {
  GoldenBackend backend;
  std::string config;
  std::string source;  // "safetensors" or "gguf"
};
void PrintTo(const F32Case& c, std::ostream* os) {
  *os << c.backend.name << " " << c.config << " " << c.source;
}

class GoldenF32Test : public ::testing::TestWithParam<F32Case> {
 protected:
  std::filesystem::path model_path(const GoldenReference& ref) const {
    return GetParam().source == "gguf" ? ref.dir / "model-f32.gguf" : ref.dir;
  }
};

TEST_P(GoldenF32Test, PrefillLogitsMatchHuggingFace) {
  const auto ref = golden_reference(GetParam().config);
  const auto expected = testing::read_f32_file(ref.dir / "logits.f32");
  Model m = open_model(GetParam().backend.name, model_path(ref));
  ASSERT_EQ(expected.size(), ref.tokens.size() * static_cast<size_t>(m.n_vocab()));
  const auto actual = prefill_all(m, ref.tokens);
  const auto d = compare_logits(actual, expected, static_cast<size_t>(m.n_vocab()));
  EXPECT_LE(d.rel, kF32Rel) << describe(d);
  EXPECT_EQ(d.argmax_diff, 0) << describe(d);
}

TEST_P(GoldenF32Test, GreedyDecodeMatchesHuggingFace) {
  const auto ref = golden_reference(GetParam().config);
  const auto expected = testing::read_f32_file(ref.dir / "logits-greedy.f32");
  Model m = open_model(GetParam().backend.name, model_path(ref));
  const auto n_vocab = static_cast<size_t>(m.n_vocab());
  ASSERT_EQ(expected.size(), ref.greedy.size() * n_vocab);

  auto logits = m.transformer->forward(ref.tokens, 0, *m.cache, LogitsMode::Last);
  int pos = static_cast<int>(ref.tokens.size());
  for (size_t step = 0; step < ref.greedy.size(); ++step) {
    const auto row = std::span(expected).subspan(step * n_vocab, n_vocab);
    const auto d = compare_logits(logits, row, n_vocab);
    EXPECT_LE(d.rel, kF32Rel) << "greedy step " << step << ": " << describe(d);
    const int32_t chosen = testing::argmax(logits);
    ASSERT_EQ(chosen, ref.greedy[step]) << "greedy step " << step;
    logits = m.transformer->forward(std::span(&chosen, 1), pos++, *m.cache, LogitsMode::Last);
  }
}

TEST_P(GoldenF32Test, F16KvCacheStaysClose) {
  const auto ref = golden_reference(GetParam().config);
  const auto expected = testing::read_f32_file(ref.dir / "logits.f32");
  Model m = open_model(GetParam().backend.name, model_path(ref), DType::F16);
  const auto d =
      compare_logits(prefill_all(m, ref.tokens), expected, static_cast<size_t>(m.n_vocab()));
  EXPECT_LE(d.rel, kF16KvRel) << describe(d);
  EXPECT_EQ(d.argmax_diff, 0) << describe(d);
}

// Every row of the prompt, then greedy decode steps (each reading the whole quantised cache)
// fed with the F32 run's tokens so that both runs see the same sequence.
TEST_P(GoldenF32Test, Q8_0KvCacheStaysCloseToF32Kv) {
  const auto ref = golden_reference(GetParam().config);
  Model f32 = open_model(GetParam().backend.name, model_path(ref));
  if (!f32.backend->supports_kv_dtype(DType::Q8_0)) {
    GTEST_SKIP() << "backend " << GetParam().backend.name << " has no Q8_0 KV cache";
  }
  Model q8 = open_model(GetParam().backend.name, model_path(ref), DType::Q8_0);
  const auto n_vocab = static_cast<size_t>(f32.n_vocab());
  const auto want = prefill_all(f32, ref.tokens);
  const auto d = compare_logits(prefill_all(q8, ref.tokens), want, n_vocab);
  EXPECT_LE(d.rel, kQ8KvRel) << "prefill: " << describe(d);
  EXPECT_LE(d.argmax_diff, kQ8KvArgmaxFlips) << "prefill: " << describe(d);
  int32_t next = testing::argmax(std::span(want).last(n_vocab));
  for (int pos = static_cast<int>(ref.tokens.size()); pos < static_cast<int>(ref.tokens.size()) + 4;
       ++pos) {
    const auto a = f32.transformer->forward(std::span(&next, 1), pos, *f32.cache, LogitsMode::Last);
    const auto b = q8.transformer->forward(std::span(&next, 1), pos, *q8.cache, LogitsMode::Last);
    const auto step = compare_logits(b, a, n_vocab);
    EXPECT_LE(step.rel, kQ8KvRel) << "decode at " << pos << ": " << describe(step);
    next = testing::argmax(a);
  }
}

TEST_P(GoldenF32Test, LastRowOnlyEqualsLastRowOfAll) {
  const auto ref = golden_reference(GetParam().config);
  Model m = open_model(GetParam().backend.name, model_path(ref));
  const auto all = prefill_all(m, ref.tokens);
  m.cache->clear();
  const auto last = m.transformer->forward(ref.tokens, 0, *m.cache, LogitsMode::Last);
  const auto n_vocab = static_cast<size_t>(m.n_vocab());
  const auto d = compare_logits(last, std::span(all).last(n_vocab), n_vocab);
  EXPECT_LE(d.rel, 1e-6) << describe(d);
}

std::vector<F32Case> f32_cases() {
  std::vector<F32Case> cases;
  for (const auto& backend : testing::built_golden_backends()) {
    for (const std::string config :
         {"llama", "llama3-ropescaling", "mistral-swa", "qwen2", "qwen3"}) {
      for (const std::string source : {"safetensors", "gguf"}) {
        if (config == "mistral-swa" && source == "gguf") continue;  // no GGUF (README)
        if (backend.coverage == GoldenCoverage::Reduced &&
            !(config == "llama" && source == "gguf")) {
          continue;
        }
        cases.push_back({backend, config, source});
      }
    }
  }
  return cases;
}

std::string test_name(const std::string& backend, const std::string& config,
                      const std::string& source) {
  std::string name = backend + "_" + config + "_" + source;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenF32Test, ::testing::ValuesIn(f32_cases()),
                         [](const auto& info) {
                           return test_name(info.param.backend.name, info.param.config,
                                            info.param.source);
                         });

// ---------------------------------------------------------------------------------------------
// Quantised GGUFs. The backends quantise the activations to 8-bit blocks for the integer dot
// products, as llama.cpp does, so they are compared with llama.cpp's own logits using the
// README's bound for such engines (rel_l2 <= 0.1, rel <= 0.2: llama.cpp's arithmetic moves the
// logits 3-5% rel_l2 from the exact values, the 4-bit models differ from the f32 model by
// 33-46%, so the bound separates arithmetic noise from a wrong dequantisation or layout).
// Near-ties flip under that noise (llama.cpp's own top-2 gaps go down to 0.005), so a few
// argmax differences are allowed and greedy continuations are not required to match.

struct QuantCase {
  GoldenBackend backend;
  std::string config;
  std::string type;  // "q8_0", "q4_0", "q4_k"
};
void PrintTo(const QuantCase& c, std::ostream* os) {
  *os << c.backend.name << " " << c.config << " " << c.type;
}

constexpr double kQuantRelL2 = 0.1;
constexpr double kQuantRel = 0.2;
constexpr int kQuantArgmaxDiff = 4;  // of 24; llama.cpp alone differs from exact at up to 3

class GoldenQuantizedTest : public ::testing::TestWithParam<QuantCase> {};

TEST_P(GoldenQuantizedTest, LogitsMatchLlamaCpp) {
  const auto ref = golden_reference(GetParam().config);
  const std::string type = GetParam().type;
  const auto model_path = ref.dir / ("model-" + type + ".gguf");
  const auto llamacpp = testing::read_f32_file(ref.dir / ("logits-" + type + ".llamacpp.f32"));
  const auto exact = testing::read_f32_file(ref.dir / ("logits-" + type + ".dequant.f32"));
  Model m = open_model(GetParam().backend.name, model_path);
  const auto actual = prefill_all(m, ref.tokens);
  const auto n_vocab = static_cast<size_t>(m.n_vocab());

  const auto vs_llamacpp = compare_logits(actual, llamacpp, n_vocab);
  EXPECT_LE(vs_llamacpp.rel_l2, kQuantRelL2) << "vs llama.cpp: " << describe(vs_llamacpp);
  EXPECT_LE(vs_llamacpp.rel, kQuantRel) << "vs llama.cpp: " << describe(vs_llamacpp);
  EXPECT_LE(vs_llamacpp.argmax_diff, kQuantArgmaxDiff) << "vs llama.cpp: " << describe(vs_llamacpp);
  const auto vs_exact = compare_logits(actual, exact, n_vocab);
  std::printf("  %s %s: vs llama.cpp %s\n  %*s vs exact %s\n", GetParam().config.c_str(),
              type.c_str(), describe(vs_llamacpp).c_str(),
              static_cast<int>(GetParam().config.size() + type.size() + 1), "",
              describe(vs_exact).c_str());
  EXPECT_LE(vs_exact.rel_l2, kQuantRelL2) << "vs exact: " << describe(vs_exact);
  EXPECT_LE(vs_exact.rel, kQuantRel) << "vs exact: " << describe(vs_exact);
  EXPECT_LE(vs_exact.argmax_diff, kQuantArgmaxDiff) << "vs exact: " << describe(vs_exact);
}

// The decode path (matmul_vec, one token at a time) agrees with one batched pass (matmul) over
// the same tokens: both quantise each activation row the same way, so only summation order
// differs (but on CUDA: decode_vs_batch_bound).
TEST_P(GoldenQuantizedTest, DecodeAgreesWithBatchedPass) {
  const auto ref = golden_reference(GetParam().config);
  Model m = open_model(GetParam().backend.name, ref.dir / ("model-" + GetParam().type + ".gguf"));
  const auto n_vocab = static_cast<size_t>(m.n_vocab());
  std::vector<int32_t> sequence = ref.tokens;
  std::vector<float> decoded;
  auto logits = m.transformer->forward(ref.tokens, 0, *m.cache, LogitsMode::Last);
  for (int step = 0; step < 8; ++step) {
    decoded.insert(decoded.end(), logits.begin(), logits.end());
    const int32_t next = testing::argmax(logits);
    sequence.push_back(next);
    logits = m.transformer->forward(std::span(&next, 1), static_cast<int>(sequence.size()) - 1,
                                    *m.cache, LogitsMode::Last);
  }
  m.cache->clear();
  const auto all = prefill_all(m, sequence);
  const auto batched = std::span(all).subspan((ref.tokens.size() - 1) * n_vocab, 8 * n_vocab);
  const auto d = compare_logits(decoded, batched, n_vocab);
  EXPECT_LE(d.rel, decode_vs_batch_bound(GetParam().backend.name)) << describe(d);
}

std::vector<QuantCase> quant_cases() {
  std::vector<QuantCase> cases;
  for (const auto& backend : testing::built_golden_backends()) {
    for (const auto& [config, type] : std::vector<std::pair<std::string, std::string>>{
             {"llama", "q8_0"}, {"llama", "q4_0"}, {"qwen2", "q4_0"}, {"qwen2", "q4_k"}}) {
      if (backend.coverage == GoldenCoverage::Reduced && config != "llama") continue;
      cases.push_back({backend, config, type});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenQuantizedTest, ::testing::ValuesIn(quant_cases()),
                         [](const auto& info) {
                           return test_name(info.param.backend.name, info.param.config,
                                            info.param.type);
                         });

}  // namespace
}  // namespace torchless
