#include "torchless/formats/model_validation.h"

#include <cmath>

#include "torchless/core/error.h"

namespace torchless {
namespace {

void check_config(const ModelConfig& c) {
  const auto positive = [](std::string_view what, int v) {
    if (v <= 0) fail("{} must be positive, got {}", what, v);
  };
  positive("n_vocab", c.n_vocab);
  positive("n_embd", c.n_embd);
  positive("n_ff", c.n_ff);
  positive("n_layers", c.n_layers);
  positive("n_heads", c.n_heads);
  positive("n_kv_heads", c.n_kv_heads);
  positive("head_dim", c.head_dim);
  positive("n_ctx_train", c.n_ctx_train);
  if (c.n_heads % c.n_kv_heads != 0) {
    fail("{} attention heads cannot be shared among {} KV heads", c.n_heads, c.n_kv_heads);
  }
  if (c.head_dim % 2 != 0) fail("head_dim {} must be even for RoPE", c.head_dim);
  if (!(std::isfinite(c.norm_eps) && c.norm_eps > 0))
    fail("norm_eps {} must be positive", c.norm_eps);
  if (!(std::isfinite(c.rope_theta) && c.rope_theta > 0))
    fail("rope_theta {} must be positive", c.rope_theta);
  if (!(std::isfinite(c.rope_scaling_factor) && c.rope_scaling_factor > 0)) {
    fail("rope scaling factor {} must be positive", c.rope_scaling_factor);
  }
  if (c.sliding_window < 0) fail("sliding_window {} must not be negative", c.sliding_window);
}

}  // namespace

std::map<std::string, Shape> expected_tensors(const ModelConfig& c) {
  const int64_t embd = c.n_embd, q_dim = int64_t{c.n_heads} * c.head_dim,
                kv_dim = int64_t{c.n_kv_heads} * c.head_dim;
  std::map<std::string, Shape> out;
  out["token_embd.weight"] = Shape{c.n_vocab, embd};
  out["output_norm.weight"] = Shape{embd};
  if (!c.tied_embeddings) out["output.weight"] = Shape{c.n_vocab, embd};
  if (c.rope_freq_factors) out["rope_freqs.weight"] = Shape{c.head_dim / 2};
  for (int i = 0; i < c.n_layers; ++i) {
    const auto name = [i](std::string_view suffix) { return fmt::format("blk.{}.{}", i, suffix); };
    out[name("attn_norm.weight")] = Shape{embd};
    out[name("attn_q.weight")] = Shape{q_dim, embd};
    out[name("attn_k.weight")] = Shape{kv_dim, embd};
    out[name("attn_v.weight")] = Shape{kv_dim, embd};
    out[name("attn_output.weight")] = Shape{embd, q_dim};
    if (c.qkv_bias) {
      out[name("attn_q.bias")] = Shape{q_dim};
      out[name("attn_k.bias")] = Shape{kv_dim};
      out[name("attn_v.bias")] = Shape{kv_dim};
    }
    if (c.qk_norm) {
      out[name("attn_q_norm.weight")] = Shape{c.head_dim};
      out[name("attn_k_norm.weight")] = Shape{c.head_dim};
    }
    out[name("ffn_norm.weight")] = Shape{embd};
    out[name("ffn_gate.weight")] = Shape{c.n_ff, embd};
    out[name("ffn_up.weight")] = Shape{c.n_ff, embd};
    out[name("ffn_down.weight")] = Shape{embd, c.n_ff};
  }
  return out;
}

void validate_model(const ModelConfig& config, const WeightStore& weights) {
  check_config(config);
  const std::map<std::string, Shape> expected = expected_tensors(config);
  for (const auto& [name, want] : expected) {
    const HostTensorView* have = weights.find(name);
    if (!have) fail("the model has no tensor '{}' (expected shape {})", name, want.str());
    if (!(have->shape == want)) {
      fail("tensor '{}' has shape {}, expected {} for this config", name, have->shape.str(),
           want.str());
    }
  }
  if (config.rope_freq_factors && weights.get("rope_freqs.weight").dtype != DType::F32) {
    fail("tensor 'rope_freqs.weight' must be f32, got {}",
         dtype_name(weights.get("rope_freqs.weight").dtype));
  }
  // Like llama.cpp, refuse tensors the Transformer would ignore: an o_proj bias, experts or
  // extra layers mean a model that would run wrongly, not one that runs.
  for (const auto& [name, view] : weights.all()) {
    if (!expected.count(name))
      fail("tensor '{}' is not used by the {} model; this variant is not supported", name,
           config.architecture);
  }
}

}  // namespace torchless
