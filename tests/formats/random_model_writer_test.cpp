// write_random_model for every family the loader reads: what the loader makes of the file is
// the config that was asked for (architecture, decoupled head_dim, biases, q/k norms, sliding
// window, tied head), and the family's tensors are there with their shapes.
#include "torchless/formats/random_model_writer.h"

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "torchless/core/error.h"
#include "torchless/formats/model_loader.h"

namespace torchless {
namespace {

RandomModelSpec small_spec(const std::string& arch) {
  RandomModelSpec spec;
  ModelConfig& c = spec.config;
  c.architecture = arch;
  c.n_vocab = 270;
  c.n_embd = 96;
  c.n_ff = 160;
  c.n_layers = 2;
  c.n_heads = 3;
  c.n_kv_heads = 1;
  c.head_dim = 64;  // 3 x 64 != 96: decoupled from the hidden size
  c.n_ctx_train = 64;
  c.norm_eps = 1e-6f;
  c.rope_theta = 1e6f;
  spec.weight_dtype = DType::Q8_0;
  return spec;
}

TEST(RandomModelWriter, EveryFamilyLoadsAsTheConfigItWasWrittenFrom) {
  const test::TempDir dir;
  struct Family {
    std::string arch;
    bool bias, qk_norm, tied;
    int window;
  };
  for (const Family& f :
       {Family{"llama", false, false, false, 0}, Family{"mistral", false, false, false, 5},
        Family{"qwen2", true, false, true, 0}, Family{"qwen3", false, true, true, 0}}) {
    SCOPED_TRACE(f.arch);
    RandomModelSpec spec = small_spec(f.arch);
    spec.config.qkv_bias = f.bias;
    spec.config.qk_norm = f.qk_norm;
    spec.config.tied_embeddings = f.tied;
    spec.config.sliding_window = f.window;
    const auto path = dir / (f.arch + ".gguf");
    write_random_model(spec, path);

    const LoadedModel model = load_model(path);
    const ModelConfig& c = model.config;
    EXPECT_EQ(c.architecture, f.arch);
    EXPECT_EQ(c.n_embd, 96);
    EXPECT_EQ(c.n_ff, 160);
    EXPECT_EQ(c.n_heads, 3);
    EXPECT_EQ(c.n_kv_heads, 1);
    EXPECT_EQ(c.head_dim, 64);
    EXPECT_EQ(c.n_vocab, 270);
    EXPECT_FLOAT_EQ(c.rope_theta, 1e6f);
    EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
    EXPECT_EQ(c.qkv_bias, f.bias);
    EXPECT_EQ(c.qk_norm, f.qk_norm);
    EXPECT_EQ(c.tied_embeddings, f.tied);
    EXPECT_EQ(c.sliding_window, f.window);
    EXPECT_EQ(c.rope_neox, f.arch == "qwen2" || f.arch == "qwen3");
    EXPECT_EQ(model.weights.contains("output.weight"), !f.tied);
    EXPECT_EQ(model.weights.contains("blk.1.attn_k.bias"), f.bias);
    if (f.bias) {
      EXPECT_EQ(model.weights.get("blk.1.attn_q.bias").shape, Shape{192});
    }
    if (f.qk_norm) {
      EXPECT_EQ(model.weights.get("blk.1.attn_k_norm.weight").shape, Shape{64});
    }
    EXPECT_EQ(model.weights.get("blk.0.attn_output.weight").shape, (Shape{96, 192}));
    EXPECT_EQ(model.weights.get("blk.0.attn_q.weight").dtype, DType::Q8_0);
  }
}

TEST(RandomModelWriter, RejectsWhatNoLoaderReads) {
  const test::TempDir dir;
  RandomModelSpec spec = small_spec("gpt2");
  EXPECT_THROW(write_random_model(spec, dir / "a.gguf"), Error);
  spec = small_spec("llama");
  spec.weight_dtype = DType::F32;
  spec.config.head_dim = 47;  // RoPE rotates pairs
  EXPECT_THROW(write_random_model(spec, dir / "b.gguf"), Error);
  spec = small_spec("llama");
  spec.config.n_embd = 100;  // not whole Q8_0 blocks
  EXPECT_THROW(write_random_model(spec, dir / "c.gguf"), Error);
}

}  // namespace
}  // namespace torchless
