#include "torchless/formats/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/loader_test_util.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

using namespace torchless::test;
using nlohmann::json;
using ::testing::HasSubstr;

// The values the golden README states for each family (independent of the parser).
struct GoldenExpectation {
  std::string folder, arch;
  int n_vocab, n_heads;
  float rope_theta, eps;
  bool tied, bias, qk_norm;
  int window;
};

const std::vector<GoldenExpectation> kGolden = {
    {"llama", "llama", 512, 4, 10000.0f, 1e-5f, false, false, false, 0},
    {"llama3-ropescaling", "llama", 512, 4, 500000.0f, 1e-5f, false, false, false, 0},
    {"mistral-swa", "mistral", 512, 4, 10000.0f, 1e-5f, false, false, false, 8},
    {"qwen2", "qwen2", 1024, 4, 1e6f, 1e-6f, true, true, false, 0},
    {"qwen3", "qwen3", 1024, 8, 1e6f, 1e-6f, true, false, true, 0},
};

void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_neox, b.rope_neox);
  EXPECT_EQ(a.rope_scaling, b.rope_scaling);
  EXPECT_EQ(a.rope_scaling_factor, b.rope_scaling_factor);
  EXPECT_EQ(a.rope_low_freq_factor, b.rope_low_freq_factor);
  EXPECT_EQ(a.rope_high_freq_factor, b.rope_high_freq_factor);
  EXPECT_EQ(a.rope_original_context, b.rope_original_context);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
}

TEST(HfConfig, GoldenConfigsGiveTheDocumentedHyperparameters) {
  for (const GoldenExpectation& g : kGolden) {
    SCOPED_TRACE(g.folder);
    const ModelConfig c = read_hf_config(shared_path("golden/" + g.folder + "/config.json"));
    EXPECT_EQ(c.name, g.folder);
    EXPECT_EQ(c.architecture, g.arch);
    EXPECT_EQ(c.n_vocab, g.n_vocab);
    EXPECT_EQ(c.n_embd, 256);
    EXPECT_EQ(c.n_ff, 512);
    EXPECT_EQ(c.n_layers, 2);
    EXPECT_EQ(c.n_heads, g.n_heads);
    EXPECT_EQ(c.n_kv_heads, 2);
    EXPECT_EQ(c.head_dim, 64);
    EXPECT_EQ(c.n_ctx_train, 512);
    EXPECT_FLOAT_EQ(c.rope_theta, g.rope_theta);
    EXPECT_FLOAT_EQ(c.norm_eps, g.eps);
    EXPECT_TRUE(c.rope_neox);
    EXPECT_EQ(c.tied_embeddings, g.tied);
    EXPECT_EQ(c.qkv_bias, g.bias);
    EXPECT_EQ(c.qk_norm, g.qk_norm);
    EXPECT_EQ(c.sliding_window, g.window);
    EXPECT_FALSE(c.rope_freq_factors);
    if (g.folder == "llama3-ropescaling") {
      EXPECT_EQ(c.rope_scaling, RopeScaling::Llama3);
      EXPECT_EQ(c.rope_scaling_factor, 8.0f);
      EXPECT_EQ(c.rope_low_freq_factor, 1.0f);
      EXPECT_EQ(c.rope_high_freq_factor, 4.0f);
      EXPECT_EQ(c.rope_original_context, 64);
    } else {
      EXPECT_EQ(c.rope_scaling, RopeScaling::None);
    }
  }
}

TEST(HfConfig, Transformers4And5LayoutsAgree) {
  for (const GoldenExpectation& g : kGolden) {
    SCOPED_TRACE(g.folder);
    expect_same(read_hf_config(shared_path("golden/" + g.folder + "/config.json")),
                read_hf_config(shared_path("golden/" + g.folder + "/config.v4.json")));
  }
}

json golden_json(const std::string& folder) {
  return json::parse(read_text(shared_path("golden/" + folder + "/config.json")));
}

ModelConfig parse(const json& j) {
  return parse_hf_config(j.dump(), "test-config.json");
}

void expect_error(const json& j, const std::string& needle) {
  try {
    parse(j);
    ADD_FAILURE() << "accepted: " << j.dump();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(needle));
    EXPECT_THAT(e.what(), HasSubstr("test-config.json"));
  }
}

TEST(HfConfig, QwenAppliesTheWindowOnlyWithUseSlidingWindow) {
  json j = golden_json("qwen2");
  j.erase("layer_types");
  j["sliding_window"] = 37;
  EXPECT_EQ(parse(j).sliding_window, 0);  // use_sliding_window false
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 0;
  EXPECT_EQ(parse(j).sliding_window, 37);
  j["max_window_layers"] = 28;  // >= num_hidden_layers: no layer is windowed
  EXPECT_EQ(parse(j).sliding_window, 0);
  j["max_window_layers"] = 1;
  expect_error(j, "sliding window from layer 1");
  j["layer_types"] = {"sliding_attention", "full_attention"};
  expect_error(j, "1 of 2 layers");
  j["layer_types"] = {"sliding_attention", "sliding_attention"};
  EXPECT_EQ(parse(j).sliding_window, 37);
}

TEST(HfConfig, MistralWindowMayBeNull) {
  json j = golden_json("mistral-swa");
  EXPECT_EQ(parse(j).sliding_window, 8);
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse(j).sliding_window, 0);
}

TEST(HfConfig, RopeScalingVariants) {
  json j = golden_json("llama");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.5}, {"rope_theta", 12345.0}};
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_scaling, RopeScaling::Linear);
  EXPECT_FLOAT_EQ(c.rope_scaling_factor, 2.5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 12345.0f);

  json v4 = json::parse(read_text(shared_path("golden/llama/config.v4.json")));
  v4["rope_scaling"] = {{"type", "linear"}, {"factor", 4}};  // transformers-4 spelling
  EXPECT_EQ(parse(v4).rope_scaling, RopeScaling::Linear);
  EXPECT_FLOAT_EQ(parse(v4).rope_scaling_factor, 4.0f);
  v4["rope_scaling"] = {
      {"rope_type", "yarn"}, {"factor", 4}, {"original_max_position_embeddings", 128}};
  EXPECT_EQ(parse(v4).rope_scaling, RopeScaling::Yarn);
  EXPECT_EQ(parse(v4).rope_original_context, 128);
  v4["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 4}};
  expect_error(v4, "'dynamic' is not supported");
  v4["rope_scaling"] = {
      {"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 4}, {"high_freq_factor", 1}};
  expect_error(v4, "high_freq_factor");
  v4["rope_scaling"] = nullptr;
  v4["partial_rotary_factor"] = 0.5;
  expect_error(v4, "partial_rotary_factor");
}

TEST(HfConfig, DefaultsFollowTransformers) {
  json j = golden_json("llama");
  for (const char* key : {"num_key_value_heads", "head_dim", "rope_parameters", "rms_norm_eps",
                          "tie_word_embeddings", "max_position_embeddings", "attention_bias"}) {
    j.erase(key);
  }
  j["hidden_size"] = 96;
  j["num_attention_heads"] = 3;
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.n_ctx_train, 2048);
  EXPECT_FALSE(c.qkv_bias);
  j["attention_bias"] = true;
  EXPECT_TRUE(parse(j).qkv_bias);
}

TEST(HfConfig, BadConfigsNameTheProblem) {
  json j = golden_json("llama");
  j["model_type"] = "gemma2";
  expect_error(j, "model_type 'gemma2' is not supported (supported: llama, mistral, qwen2, qwen3)");
  j = golden_json("llama");
  j.erase("model_type");
  expect_error(j, "missing 'model_type'");
  j = golden_json("llama");
  j.erase("hidden_size");
  expect_error(j, "missing 'hidden_size'");
  j = golden_json("llama");
  j["num_hidden_layers"] = -2;
  expect_error(j, "'num_hidden_layers' = -2");
  j["num_hidden_layers"] = "2";
  expect_error(j, "'num_hidden_layers' must be an integer");
  j["num_hidden_layers"] = 1e300;
  expect_error(j, "'num_hidden_layers' must be an integer");
  j["num_hidden_layers"] = uint64_t{1} << 63;
  expect_error(j, "'num_hidden_layers'");
  j = golden_json("llama");
  j["rms_norm_eps"] = -1;
  expect_error(j, "rms_norm_eps");
  j = golden_json("llama");
  j["hidden_act"] = "gelu";
  expect_error(j, "hidden_act 'gelu'");
  j = golden_json("llama");
  j["mlp_bias"] = true;
  expect_error(j, "mlp_bias");
  EXPECT_THROW(parse_hf_config("{\"model_type\": ", "x"), Error);
  EXPECT_THROW(parse_hf_config("[]", "x"), Error);
  EXPECT_THROW(read_hf_config(shared_dir() / "golden/no-such/config.json"), Error);
}

}  // namespace
}  // namespace torchless
