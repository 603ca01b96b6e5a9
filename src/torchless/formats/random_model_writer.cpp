#include "torchless/formats/random_model_writer.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "torchless/core/error.h"
#include "torchless/core/quant.h"
#include "torchless/formats/gguf_writer.h"

namespace torchless {
namespace {

// xorshift-based normal-ish values: fast enough for a billion parameters, and deterministic.
class WeightGenerator {
 public:
  explicit WeightGenerator(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}

  // Sum of four uniforms in [-1, 1): bell-shaped with standard deviation ~1.155.
  std::vector<float> values(int64_t n, float stddev, float mean = 0.0f) {
    std::vector<float> out(static_cast<size_t>(n));
    const float scale = stddev / 1.1547f;
    for (float& v : out) v = mean + scale * (uniform() + uniform() + uniform() + uniform());
    return out;
  }

 private:
  float uniform() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<float>(state_ >> 40) * (2.0f / 16777216.0f) - 1.0f;
  }
  uint64_t state_;
};

// The architectures the GGUF loader reads; the family's features are the config's flags.
bool known_architecture(const std::string& arch) {
  return arch == "llama" || arch == "mistral" || arch == "qwen2" || arch == "qwen3";
}

void validate(const RandomModelSpec& spec) {
  const ModelConfig& c = spec.config;
  if (!c.architecture.empty() && !known_architecture(c.architecture)) {
    fail("random model: architecture '{}' is not one of llama, mistral, qwen2, qwen3",
         c.architecture);
  }
  if (c.head_dim % 2 != 0 || c.sliding_window < 0) {
    fail("random model: head_dim {} must be even and the sliding window {} not negative",
         c.head_dim, c.sliding_window);
  }
  if (c.n_vocab < 260 || c.n_embd <= 0 || c.n_ff <= 0 || c.n_layers <= 0 || c.n_heads <= 0 ||
      c.n_kv_heads <= 0 || c.head_dim <= 0) {
    fail("random model: every dimension must be positive and the vocabulary at least 260 tokens");
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    fail("random model: {} heads are not a multiple of {} KV heads", c.n_heads, c.n_kv_heads);
  }
  if (!can_quantize(spec.weight_dtype)) {
    fail("random model: cannot write weights as {}", dtype_name(spec.weight_dtype));
  }
  const int64_t block = dtype_block_size(spec.weight_dtype);
  if (c.n_embd % block != 0 || c.n_ff % block != 0 || (c.n_heads * c.head_dim) % block != 0) {
    fail("random model: {} needs row lengths that are multiples of {}",
         dtype_name(spec.weight_dtype), block);
  }
}

void add_vocabulary(GgufWriter& w, int n_vocab) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);  // byte
  }
  while (static_cast<int>(tokens.size()) < n_vocab) {
    tokens.push_back(fmt::format("\u2581w{}", tokens.size()));
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  w.add("tokenizer.ggml.model", gguf_string("llama"));
  w.add("tokenizer.ggml.tokens", gguf_string_array(tokens));
  w.add("tokenizer.ggml.scores", gguf_f32_array(scores));
  w.add("tokenizer.ggml.token_type", gguf_i32_array(types));
  w.add("tokenizer.ggml.unknown_token_id", gguf_u32(0));
  w.add("tokenizer.ggml.bos_token_id", gguf_u32(1));
  w.add("tokenizer.ggml.eos_token_id", gguf_u32(2));
}

std::string architecture(const ModelConfig& c) {
  return c.architecture.empty() ? "llama" : c.architecture;
}

void add_hyperparameters(GgufWriter& w, const ModelConfig& c) {
  const std::string arch = architecture(c);
  auto u32 = [&](std::string_view key, int value) {
    w.add(fmt::format("{}.{}", arch, key), gguf_u32(static_cast<uint32_t>(value)));
  };
  auto f32 = [&](std::string_view key, float value) {
    w.add(fmt::format("{}.{}", arch, key), gguf_f32(value));
  };
  w.add("general.architecture", gguf_string(arch));
  w.add("general.name", gguf_string(c.name.empty() ? "random" : c.name));
  u32("context_length", c.n_ctx_train);
  u32("embedding_length", c.n_embd);
  u32("block_count", c.n_layers);
  u32("feed_forward_length", c.n_ff);
  u32("attention.head_count", c.n_heads);
  u32("attention.head_count_kv", c.n_kv_heads);
  u32("attention.key_length", c.head_dim);
  u32("attention.value_length", c.head_dim);
  u32("rope.dimension_count", c.head_dim);
  f32("attention.layer_norm_rms_epsilon", c.norm_eps);
  f32("rope.freq_base", c.rope_theta);
  u32("vocab_size", c.n_vocab);
  if (c.sliding_window > 0) u32("attention.sliding_window", c.sliding_window);
}

}  // namespace

ModelConfig llama_1b_like_config() {
  ModelConfig c;
  c.architecture = "llama";
  c.name = "random-llama-1b";
  c.n_vocab = 32000;
  c.n_embd = 2048;
  c.n_ff = 8192;
  c.n_layers = 16;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 64;
  c.n_ctx_train = 4096;
  c.norm_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  return c;
}

void write_random_model(const RandomModelSpec& spec, const std::filesystem::path& path) {
  validate(spec);
  const ModelConfig& c = spec.config;
  GgufWriter w;
  add_hyperparameters(w, c);
  add_vocabulary(w, c.n_vocab);
  WeightGenerator gen(spec.seed);
  const DType wt = spec.weight_dtype;
  // Scaled like trained models (std ~ 1/sqrt(fan_in)) so activations stay in a sane range.
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    const float stddev = 1.0f / std::sqrt(static_cast<float>(cols));
    w.add_tensor_from_f32(name, wt, Shape{rows, cols}, gen.values(rows * cols, stddev));
  };
  auto norm = [&](const std::string& name, int64_t n) {
    w.add_tensor_from_f32(name, DType::F32, Shape{n}, gen.values(n, 0.05f, 1.0f));
  };
  auto bias = [&](const std::string& name, int64_t n) {
    w.add_tensor_from_f32(name, DType::F32, Shape{n}, gen.values(n, 0.1f));
  };
  const int64_t q_rows = int64_t{c.n_heads} * c.head_dim;
  const int64_t kv_rows = int64_t{c.n_kv_heads} * c.head_dim;
  matrix("token_embd.weight", c.n_vocab, c.n_embd);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    norm(p + "attn_norm.weight", c.n_embd);
    matrix(p + "attn_q.weight", q_rows, c.n_embd);
    matrix(p + "attn_k.weight", kv_rows, c.n_embd);
    matrix(p + "attn_v.weight", kv_rows, c.n_embd);
    if (c.qkv_bias) {  // Qwen2
      bias(p + "attn_q.bias", q_rows);
      bias(p + "attn_k.bias", kv_rows);
      bias(p + "attn_v.bias", kv_rows);
    }
    if (c.qk_norm) {  // Qwen3: RMSNorm weights over one head
      norm(p + "attn_q_norm.weight", c.head_dim);
      norm(p + "attn_k_norm.weight", c.head_dim);
    }
    matrix(p + "attn_output.weight", c.n_embd, q_rows);
    norm(p + "ffn_norm.weight", c.n_embd);
    matrix(p + "ffn_gate.weight", c.n_ff, c.n_embd);
    matrix(p + "ffn_up.weight", c.n_ff, c.n_embd);
    matrix(p + "ffn_down.weight", c.n_embd, c.n_ff);
  }
  norm("output_norm.weight", c.n_embd);
  // A tied model has no output head: the loader falls back to the embedding.
  if (!c.tied_embeddings) matrix("output.weight", c.n_vocab, c.n_embd);
  w.write_file(path);
}

}  // namespace torchless
