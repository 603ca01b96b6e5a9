// GGUF metadata -> ModelConfig on small generated files (the golden files are covered by
// model_loader_test.cpp).
#include "torchless/formats/gguf_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "formats/loader_test_util.h"
#include "torchless/core/error.h"
#include "torchless/formats/gguf_writer.h"

namespace torchless {
namespace {

using namespace torchless::test;
using ::testing::HasSubstr;

constexpr int kEmbd = 8, kHeads = 2, kKv = 1, kHeadDim = 6, kFf = 12, kLayers = 2, kVocab = 10;

// A small model description that tests edit before writing it.
struct TinyGguf {
  std::string arch = "qwen2";
  std::map<std::string, GgufValue> keys;  // without the "<arch>." prefix
  std::map<std::string, Shape> tensors;

  TinyGguf() {
    keys["context_length"] = gguf_u32(96);
    keys["embedding_length"] = gguf_u32(kEmbd);
    keys["feed_forward_length"] = gguf_u32(kFf);
    keys["block_count"] = gguf_u32(kLayers);
    keys["attention.head_count"] = gguf_u32(kHeads);
    keys["attention.head_count_kv"] = gguf_u32(kKv);
    keys["attention.key_length"] = gguf_u32(kHeadDim);
    keys["attention.layer_norm_rms_epsilon"] = gguf_f32(3e-6f);
    keys["rope.freq_base"] = gguf_f32(20000.0f);
    tensors["token_embd.weight"] = Shape{kVocab, kEmbd};
    tensors["output_norm.weight"] = Shape{kEmbd};
    for (int i = 0; i < kLayers; ++i) {
      const std::string b = "blk." + std::to_string(i) + ".";
      tensors[b + "attn_norm.weight"] = Shape{kEmbd};
      tensors[b + "ffn_norm.weight"] = Shape{kEmbd};
      tensors[b + "attn_q.weight"] = Shape{kHeads * kHeadDim, kEmbd};
      tensors[b + "attn_k.weight"] = Shape{kKv * kHeadDim, kEmbd};
      tensors[b + "attn_v.weight"] = Shape{kKv * kHeadDim, kEmbd};
      tensors[b + "attn_output.weight"] = Shape{kEmbd, kHeads * kHeadDim};
      tensors[b + "ffn_gate.weight"] = Shape{kFf, kEmbd};
      tensors[b + "ffn_up.weight"] = Shape{kFf, kEmbd};
      tensors[b + "ffn_down.weight"] = Shape{kEmbd, kFf};
    }
  }

  fs::path write(const TempDir& dir, const std::string& name = "tiny.gguf") const {
    GgufWriter w;
    w.add("general.architecture", gguf_string(arch));
    for (const auto& [key, value] : keys) w.add(arch + "." + key, value);
    uint32_t seed = 1;
    for (const auto& [name_, shape] : tensors) {
      w.add_tensor_from_f32(name_, DType::F32, shape,
                            random_floats(static_cast<size_t>(shape.numel()), seed++));
    }
    const fs::path path = dir.path() / name;
    w.write_file(path);
    return path;
  }
};

std::string load_error(const fs::path& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded " << path;
  return "";
}

TEST(GgufModel, MetadataBecomesTheConfig) {
  TempDir dir;
  TinyGguf tiny;
  const LoadedModel m = load_model(tiny.write(dir));
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.architecture, "qwen2");
  EXPECT_EQ(c.name, "tiny");  // no general.name: the file stem
  EXPECT_EQ(c.n_vocab, kVocab);
  EXPECT_EQ(c.n_embd, kEmbd);
  EXPECT_EQ(c.n_ff, kFf);
  EXPECT_EQ(c.n_layers, kLayers);
  EXPECT_EQ(c.n_heads, kHeads);
  EXPECT_EQ(c.n_kv_heads, kKv);
  EXPECT_EQ(c.head_dim, kHeadDim);  // from key_length, not n_embd / n_heads
  EXPECT_EQ(c.n_ctx_train, 96);
  EXPECT_FLOAT_EQ(c.norm_eps, 3e-6f);
  EXPECT_FLOAT_EQ(c.rope_theta, 20000.0f);
  EXPECT_TRUE(c.rope_neox);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.rope_scaling, RopeScaling::None);
  EXPECT_EQ(c.sliding_window, 0);
  ASSERT_NE(m.gguf, nullptr);
  EXPECT_EQ(m.weights.get("blk.1.ffn_down.weight").data,
            m.gguf->find_tensor("blk.1.ffn_down.weight")->data);
}

TEST(GgufModel, TensorsSwitchFeaturesOn) {
  TempDir dir;
  TinyGguf tiny;
  tiny.arch = "llama";
  tiny.tensors["output.weight"] = Shape{kVocab, kEmbd};
  tiny.tensors["rope_freqs.weight"] = Shape{kHeadDim / 2};
  for (int i = 0; i < kLayers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    tiny.tensors[b + "attn_q.bias"] = Shape{kHeads * kHeadDim};
    tiny.tensors[b + "attn_k.bias"] = Shape{kKv * kHeadDim};
    tiny.tensors[b + "attn_v.bias"] = Shape{kKv * kHeadDim};
    tiny.tensors[b + "attn_q_norm.weight"] = Shape{kHeadDim};
    tiny.tensors[b + "attn_k_norm.weight"] = Shape{kHeadDim};
  }
  tiny.keys["attention.sliding_window"] = gguf_u32(5);
  tiny.keys["rope.scaling.type"] = gguf_string("linear");
  tiny.keys["rope.scaling.factor"] = gguf_f32(4.0f);
  tiny.keys["attention.head_count_kv"] =
      gguf_array(GgufType::UInt32, {gguf_u32(kKv), gguf_u32(kKv)});
  const ModelConfig c = load_model(tiny.write(dir)).config;
  EXPECT_FALSE(c.rope_neox);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.rope_freq_factors);
  EXPECT_EQ(c.sliding_window, 5);
  EXPECT_EQ(c.n_kv_heads, kKv);
  EXPECT_EQ(c.rope_scaling, RopeScaling::Linear);
  EXPECT_FLOAT_EQ(c.rope_scaling_factor, 4.0f);
}

TEST(GgufModel, LegacyLinearScaleKeyAndYarn) {
  TempDir dir;
  TinyGguf tiny;
  tiny.keys["rope.scale_linear"] = gguf_f32(2.0f);
  ModelConfig c = load_model(tiny.write(dir, "a.gguf")).config;
  EXPECT_EQ(c.rope_scaling, RopeScaling::Linear);
  EXPECT_FLOAT_EQ(c.rope_scaling_factor, 2.0f);
  tiny.keys.erase("rope.scale_linear");
  tiny.keys["rope.scaling.type"] = gguf_string("yarn");
  tiny.keys["rope.scaling.factor"] = gguf_f32(4.0f);
  tiny.keys["rope.scaling.original_context_length"] = gguf_u32(32);
  c = load_model(tiny.write(dir, "b.gguf")).config;
  EXPECT_EQ(c.rope_scaling, RopeScaling::Yarn);
  EXPECT_EQ(c.rope_original_context, 32);
  tiny.keys["rope.scaling.type"] = gguf_string("longrope");
  EXPECT_THAT(load_error(tiny.write(dir, "c.gguf")), HasSubstr("'longrope' is not supported"));
}

TEST(GgufModel, UnsupportedFilesNameTheProblem) {
  TempDir dir;
  {
    TinyGguf tiny;
    tiny.arch = "gemma2";
    const std::string e = load_error(tiny.write(dir, "arch.gguf"));
    EXPECT_THAT(
        e, HasSubstr(
               "architecture 'gemma2' is not supported (supported: llama, mistral, qwen2, qwen3)"));
    EXPECT_THAT(e, HasSubstr("arch.gguf"));
  }
  const auto expect = [&](auto edit, const std::string& needle) {
    TinyGguf tiny;
    edit(tiny);
    EXPECT_THAT(load_error(tiny.write(dir, "edited.gguf")), HasSubstr(needle));
  };
  expect([](TinyGguf& t) { t.keys.erase("block_count"); },
         "missing metadata key 'qwen2.block_count'");
  expect([](TinyGguf& t) { t.keys.erase("attention.layer_norm_rms_epsilon"); },
         "layer_norm_rms_epsilon");
  expect([](TinyGguf& t) { t.keys["block_count"] = gguf_string("two"); }, "'qwen2.block_count'");
  expect([](TinyGguf& t) { t.keys["block_count"] = gguf_i32(-1); }, "out of range");
  expect([](TinyGguf& t) { t.keys["rope.freq_base"] = gguf_f32(-5.0f); }, "must be positive");
  expect([](TinyGguf& t) { t.keys["rope.dimension_count"] = gguf_u32(4); }, "partial RoPE");
  expect([](TinyGguf& t) { t.keys["attention.value_length"] = gguf_u32(4); }, "value_length");
  expect(
      [](TinyGguf& t) {
        t.keys["attention.head_count_kv"] =
            gguf_array(GgufType::UInt32, {gguf_u32(1), gguf_u32(2)});
      },
      "differs between layers");
  expect([](TinyGguf& t) { t.tensors.erase("token_embd.weight"); }, "'token_embd.weight'");
  expect([](TinyGguf& t) { t.tensors.erase("blk.1.ffn_up.weight"); },
         "no tensor 'blk.1.ffn_up.weight'");
  expect(
      [](TinyGguf& t) {
        t.tensors["blk.0.ffn_gate_inp.weight"] = Shape{4, kEmbd};
      },
      "'blk.0.ffn_gate_inp.weight' is not used");
  expect([](TinyGguf& t) { t.tensors["rope_freqs.weight"] = Shape{kHeadDim}; },
         "tensor 'rope_freqs.weight' has shape [6], expected [3]");
  expect([](TinyGguf& t) { t.keys["attention.head_count_kv"] = gguf_u32(2); },
         "tensor 'blk.0.attn_k.weight' has shape [6, 8], expected [12, 8]");
}

}  // namespace
}  // namespace torchless
