#include "torchless/formats/model_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "formats/loader_test_util.h"
#include "torchless/core/error.h"
#include "torchless/core/quant.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {
namespace {

using namespace torchless::test;
using ::testing::HasSubstr;
using ::testing::StartsWith;

fs::path golden(const std::string& relative) {
  return shared_path("golden/" + relative);
}

// Hyperparameters every format must agree on (names, the RoPE layout and the form in which
// rope scaling travels are format conventions and are compared separately).
void expect_same_hyperparameters(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
}

// llama.cpp's converter: w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2), so GGUF row
// h*hd + 2i + t is Hugging Face row h*hd + t*hd/2 + i. Returns the number of rows that match.
int64_t rows_matching_permutation(const HostTensorView& gguf, const HostTensorView& hf,
                                  int head_dim) {
  const int64_t cols = hf.shape[1], rows = hf.shape[0];
  const auto* g = reinterpret_cast<const float*>(gguf.data);
  const auto* h = reinterpret_cast<const float*>(hf.data);
  int64_t matching = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t head = r / head_dim, within = r % head_dim, i = within / 2, t = within % 2;
    const int64_t hf_row = head * head_dim + t * (head_dim / 2) + i;
    matching += std::memcmp(g + r * cols, h + hf_row * cols, static_cast<size_t>(cols) * 4) == 0;
  }
  return matching;
}

void expect_same_bytes(const HostTensorView& a, const HostTensorView& b, const std::string& name) {
  EXPECT_EQ(a.dtype, b.dtype) << name;
  ASSERT_EQ(a.nbytes, b.nbytes) << name;
  EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << name << " differs";
}

TEST(ModelLoader, GoldenSafetensorsAndGgufAgree) {
  for (const std::string folder : {"llama", "llama3-ropescaling", "qwen2", "qwen3"}) {
    SCOPED_TRACE(folder);
    const LoadedModel hf = load_model(golden(folder));
    const LoadedModel gg = load_model(golden(folder + "/model-f32.gguf"));
    EXPECT_EQ(hf.format, ModelFormat::Safetensors);
    EXPECT_EQ(gg.format, ModelFormat::Gguf);
    ASSERT_NE(gg.gguf, nullptr);
    EXPECT_EQ(hf.gguf, nullptr);
    expect_same_hyperparameters(hf.config, gg.config);
    EXPECT_EQ(hf.config.n_ctx_train, gg.config.n_ctx_train);
    EXPECT_EQ(hf.config.tied_embeddings, gg.config.tied_embeddings);
    EXPECT_EQ(gg.config.name, "golden-" + folder);
    const bool llama = hf.config.architecture == "llama";
    EXPECT_TRUE(hf.config.rope_neox);
    EXPECT_EQ(gg.config.rope_neox, !llama);

    size_t extra = gg.weights.all().size() - hf.weights.all().size();
    EXPECT_EQ(extra, folder == "llama3-ropescaling" ? 1u : 0u);
    for (const auto& [name, view] : hf.weights.all()) {
      const HostTensorView* g = gg.weights.find(name);
      ASSERT_NE(g, nullptr) << name;
      EXPECT_EQ(g->shape, view.shape) << name;
      const bool permuted = name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight");
      if (llama && permuted) {
        // The relation that makes rope_neox = false right for the GGUF and true for HF.
        EXPECT_EQ(rows_matching_permutation(*g, view, hf.config.head_dim), view.shape[0]) << name;
        EXPECT_NE(std::memcmp(g->data, view.data, view.nbytes), 0) << name << " is not permuted";
      } else {
        expect_same_bytes(*g, view, name);
      }
    }
  }
}

// The GGUF carries llama3 scaling as divisors; HF as parameters. Recompute the divisors from
// the parsed HF parameters (transformers' _compute_llama3_parameters written out here) and
// compare both with the file and with the values the golden README lists.
TEST(ModelLoader, Llama3ScalingTravelsAsParametersOrDivisors) {
  const LoadedModel hf = load_model(golden("llama3-ropescaling"));
  const LoadedModel gg = load_model(golden("llama3-ropescaling/model-f32.gguf"));
  EXPECT_EQ(hf.config.rope_scaling, RopeScaling::Llama3);
  EXPECT_FALSE(hf.config.rope_freq_factors);
  EXPECT_EQ(gg.config.rope_scaling, RopeScaling::None);
  EXPECT_TRUE(gg.config.rope_freq_factors);
  const std::vector<float> divisors = view_floats(gg.weights.get("rope_freqs.weight"));
  ASSERT_EQ(divisors.size(), 32u);
  const std::vector<double> readme = {1, 1, 1, 1.425495, 2.442259, 4.637151};
  const ModelConfig& c = hf.config;
  for (size_t i = 0; i < divisors.size(); ++i) {
    const double inv_freq =
        std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / c.head_dim);
    const double wavelen = 2 * std::numbers::pi / inv_freq;
    const double old_ctx = c.rope_original_context;
    double scaled = inv_freq;
    if (wavelen > old_ctx / c.rope_low_freq_factor) {
      scaled = inv_freq / c.rope_scaling_factor;
    } else if (wavelen >= old_ctx / c.rope_high_freq_factor) {
      const double smooth = (old_ctx / wavelen - c.rope_low_freq_factor) /
                            (c.rope_high_freq_factor - c.rope_low_freq_factor);
      scaled = (1 - smooth) * inv_freq / c.rope_scaling_factor + smooth * inv_freq;
    }
    EXPECT_NEAR(divisors[i], inv_freq / scaled, 1e-5 * divisors[i]) << i;
    EXPECT_NEAR(divisors[i], i < readme.size() ? readme[i] : 8.0, 1e-6 * divisors[i]) << i;
  }
}

TEST(ModelLoader, MistralSlidingWindowLoadsFromSafetensors) {
  const LoadedModel m = load_model(golden("mistral-swa"));
  EXPECT_EQ(m.config.architecture, "mistral");
  EXPECT_EQ(m.config.sliding_window, 8);
  EXPECT_EQ(m.weights.all().size(), 3u + 9u * 2);
}

// Quantised files: same config as the f32 file, tensor types as the golden README lists
// them, and values within the quantisation error of the f32 weights (q/k permuted alike).
TEST(ModelLoader, QuantizedGgufsMatchTheF32File) {
  struct Case {
    std::string file;
    DType matrices, big;  // type of ordinary matrices, of output (llama) / token_embd (qwen2)
    double tolerance;     // of max|w - f32| relative to max|f32| per tensor
  };
  const std::vector<Case> cases = {{"llama/model-q8_0.gguf", DType::Q8_0, DType::Q8_0, 0.01},
                                   {"llama/model-q4_0.gguf", DType::Q4_0, DType::Q6_K, 0.15},
                                   {"qwen2/model-q4_0.gguf", DType::Q4_0, DType::Q6_K, 0.15},
                                   {"qwen2/model-q4_k.gguf", DType::Q4_K, DType::Q6_K, 0.15}};
  for (const Case& k : cases) {
    SCOPED_TRACE(k.file);
    const LoadedModel q = load_model(golden(k.file));
    const LoadedModel f =
        load_model(golden(k.file.substr(0, k.file.find('/')) + "/model-f32.gguf"));
    expect_same_hyperparameters(q.config, f.config);
    EXPECT_EQ(q.config.rope_neox, f.config.rope_neox);
    EXPECT_EQ(q.config.tied_embeddings, f.config.tied_embeddings);
    ASSERT_EQ(q.weights.all().size(), f.weights.all().size());
    const std::string big = q.config.tied_embeddings ? "token_embd.weight" : "output.weight";
    EXPECT_EQ(q.weights.get(big).dtype, k.big);
    EXPECT_EQ(q.weights.get("blk.0.attn_q.weight").dtype, k.matrices);
    for (const auto& [name, view] : q.weights.all()) {
      const HostTensorView& ref = f.weights.get(name);
      EXPECT_EQ(view.shape, ref.shape) << name;
      if (view.dtype == DType::F32) {
        expect_same_bytes(view, ref, name);
        continue;
      }
      ASSERT_TRUE(can_dequantize(view.dtype)) << name;
      const int64_t cols = view.shape.cols();
      const size_t row_bytes = dtype_row_bytes(view.dtype, cols);
      std::vector<float> row(static_cast<size_t>(cols));
      const std::vector<float> want = view_floats(ref);
      double max_err = 0, max_ref = 0;
      for (int64_t r = 0; r < view.shape.rows(); ++r) {
        dequantize_row(view.dtype, view.data + static_cast<size_t>(r) * row_bytes, row.data(),
                       cols);
        for (int64_t j = 0; j < cols; ++j) {
          const double w = want[static_cast<size_t>(r * cols + j)];
          max_err = std::max(max_err, std::abs(row[static_cast<size_t>(j)] - w));
          max_ref = std::max(max_ref, std::abs(w));
        }
      }
      EXPECT_LE(max_err, k.tolerance * max_ref) << name;
      EXPECT_GT(max_err, 0.0) << name << " is exact: not really quantised?";
    }
  }
}

TEST(ModelLoader, Stories260KGgufAndCheckpointAgree) {
  const LoadedModel gg = load_model(shared_path("models/stories260K.gguf"));
  const LoadedModel bin = load_model(shared_path("models/stories260K.bin"));
  EXPECT_EQ(gg.format, ModelFormat::Gguf);
  EXPECT_EQ(bin.format, ModelFormat::Llama2c);
  expect_same_hyperparameters(gg.config, bin.config);
  EXPECT_EQ(gg.config.rope_neox, false);
  EXPECT_EQ(bin.config.rope_neox, false);
  EXPECT_EQ(gg.config.head_dim, 8);
  // Conventions that legitimately differ: the converter hard-codes context 128 and writes
  // the shared classifier as a copy.
  EXPECT_EQ(gg.config.n_ctx_train, 128);
  EXPECT_EQ(bin.config.n_ctx_train, 512);
  EXPECT_FALSE(gg.config.tied_embeddings);
  EXPECT_TRUE(bin.config.tied_embeddings);
  for (const auto& [name, view] : bin.weights.all())
    expect_same_bytes(view, gg.weights.get(name), name);
  expect_same_bytes(bin.weights.get("token_embd.weight"), gg.weights.get("output.weight"),
                    "output.weight");
}

TEST(ModelLoader, DetectsEachFormat) {
  EXPECT_EQ(detect_model_format(golden("llama")), ModelFormat::Safetensors);
  EXPECT_EQ(detect_model_format(golden("llama/config.json")), ModelFormat::Safetensors);
  EXPECT_EQ(detect_model_format(golden("llama/model.safetensors")), ModelFormat::Safetensors);
  EXPECT_EQ(detect_model_format(golden("llama/model-q8_0.gguf")), ModelFormat::Gguf);
  EXPECT_EQ(detect_model_format(shared_path("models/stories260K.bin")), ModelFormat::Llama2c);
  EXPECT_EQ(load_model(golden("qwen3/model.safetensors")).config.architecture, "qwen3");
  EXPECT_EQ(load_model(golden("qwen3/config.json")).path, golden("qwen3"));

  TempDir dir;
  EXPECT_THROW(detect_model_format(dir.path() / "missing.gguf"), Error);
  EXPECT_THROW(detect_model_format(dir.path()), Error);  // a directory without config.json
  write_text(dir.path() / "notes.txt", "hello, not a model at all");
  try {
    load_model(dir.path() / "notes.txt");
    ADD_FAILURE() << "a text file loaded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not a GGUF file"));
  }
  // Same bytes as stories260K.bin under another name are still recognised by their header.
  fs::copy_file(shared_path("models/stories260K.bin"), dir.path() / "stories.ckpt");
  EXPECT_EQ(detect_model_format(dir.path() / "stories.ckpt"), ModelFormat::Llama2c);
}

}  // namespace
}  // namespace torchless
