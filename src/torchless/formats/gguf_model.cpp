#include "torchless/formats/gguf_model.h"

#include <cmath>
#include <limits>
#include <optional>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/formats/gguf_split.h"

namespace torchless {
namespace {

constexpr std::string_view kSupportedArchs = "llama, mistral, qwen2, qwen3";

int64_t integer_value(const GgufValue& v, const std::string& name) {
  std::vector<int64_t> items;
  try {
    items = v.type == GgufType::Array ? v.as_i64_list() : std::vector<int64_t>{v.as_i64()};
  } catch (const Error& e) {
    fail("metadata key '{}': {}", name, e.what());
  }
  if (items.empty()) fail("metadata key '{}' is an empty array", name);
  for (int64_t item : items) {
    if (item != items[0])
      fail("metadata key '{}' differs between layers, which is not supported", name);
  }
  return items[0];
}

class MetadataReader {
 public:
  MetadataReader(const GgufFile& gguf, std::string arch) : gguf_(gguf), arch_(std::move(arch)) {}

  std::string key(std::string_view suffix) const { return fmt::format("{}.{}", arch_, suffix); }

  // An integer hyperparameter; llama.cpp allows some (head_count_kv, feed_forward_length) to be
  // per-layer arrays, which torchless accepts only when every layer has the same value.
  int get_int(std::string_view suffix, std::optional<int64_t> fallback,
              int64_t min_value = 1) const {
    const std::string name = key(suffix);
    const GgufValue* v = gguf_.find(name);
    if (!v) {
      if (!fallback) fail("missing metadata key '{}'", name);
      return static_cast<int>(*fallback);
    }
    const int64_t x = integer_value(*v, name);
    if (x < min_value || x > std::numeric_limits<int32_t>::max()) {
      fail("metadata key '{}' = {} is out of range", name, x);
    }
    return static_cast<int>(x);
  }

  std::optional<double> find_float(std::string_view suffix) const {
    const std::string name = key(suffix);
    const GgufValue* v = gguf_.find(name);
    if (!v) return std::nullopt;
    double x = 0;
    try {
      x = v->as_f64();
    } catch (const Error& e) {
      fail("metadata key '{}': {}", name, e.what());
    }
    if (!std::isfinite(x) || x <= 0) fail("metadata key '{}' = {} must be positive", name, x);
    return x;
  }
  double get_float(std::string_view suffix, std::optional<double> fallback) const {
    const std::optional<double> x = find_float(suffix);
    if (!x && !fallback) fail("missing metadata key '{}'", key(suffix));
    return x ? *x : *fallback;
  }

 private:
  const GgufFile& gguf_;
  std::string arch_;
};

void read_rope_scaling(const GgufFile& gguf, const MetadataReader& r, ModelConfig& c) {
  // As llama.cpp: a scaling factor without a type means linear scaling.
  std::optional<double> factor = r.find_float("rope.scaling.factor");
  if (!factor) factor = r.find_float("rope.scale_linear");
  const std::string type = gguf.get_string(r.key("rope.scaling.type"), factor ? "linear" : "none");
  if (type == "none") return;
  if (type == "linear") {
    c.rope_scaling = RopeScaling::Linear;
  } else if (type == "yarn") {
    c.rope_scaling = RopeScaling::Yarn;
    c.rope_original_context = r.get_int("rope.scaling.original_context_length", c.n_ctx_train);
  } else {
    fail("rope scaling type '{}' is not supported (supported: none, linear, yarn)", type);
  }
  c.rope_scaling_factor = static_cast<float>(factor.value_or(1.0));
}

void read_hyperparameters(const MetadataReader& r, ModelConfig& c) {
  c.n_embd = r.get_int("embedding_length", std::nullopt);
  c.n_ff = r.get_int("feed_forward_length", std::nullopt);
  c.n_layers = r.get_int("block_count", std::nullopt);
  c.n_heads = r.get_int("attention.head_count", std::nullopt);
  c.n_kv_heads = r.get_int("attention.head_count_kv", c.n_heads);
  c.head_dim = r.get_int("attention.key_length", c.n_embd / c.n_heads);
  const int value_dim = r.get_int("attention.value_length", c.head_dim);
  if (value_dim != c.head_dim) {
    fail("attention.value_length {} differs from key_length {}, which is not supported", value_dim,
         c.head_dim);
  }
  const int rotary = r.get_int("rope.dimension_count", c.head_dim);
  if (rotary != c.head_dim)
    fail("partial RoPE ({} of {} dimensions) is not supported", rotary, c.head_dim);
  c.n_ctx_train = r.get_int("context_length", std::nullopt);
  c.norm_eps = static_cast<float>(r.get_float("attention.layer_norm_rms_epsilon", std::nullopt));
  c.rope_theta = static_cast<float>(r.get_float("rope.freq_base", 10000.0));
  c.sliding_window = r.get_int("attention.sliding_window", 0, 0);
}

}  // namespace

ModelConfig gguf_model_config(const GgufFile& gguf) {
  ModelConfig c;
  c.architecture = gguf.get_string("general.architecture", "");
  if (c.architecture.empty()) fail("missing metadata key 'general.architecture'");
  if (c.architecture != "llama" && c.architecture != "mistral" && c.architecture != "qwen2" &&
      c.architecture != "qwen3") {
    fail("architecture '{}' is not supported (supported: {})", c.architecture, kSupportedArchs);
  }
  c.name = gguf.get_string("general.name", "");
  const MetadataReader r(gguf, c.architecture);
  read_hyperparameters(r, c);
  read_rope_scaling(gguf, r, c);
  c.rope_neox = c.architecture == "qwen2" || c.architecture == "qwen3";

  // The vocabulary size is the embedding's row count: tokenizer arrays may be padded or absent.
  const GgufTensorInfo* embd = gguf.find_tensor("token_embd.weight");
  if (!embd) fail("the model has no tensor 'token_embd.weight'");
  if (embd->shape.rank() != 2)
    fail("tensor 'token_embd.weight' has shape {}, expected 2-D", embd->shape.str());
  if (embd->shape[0] > std::numeric_limits<int32_t>::max())
    fail("vocabulary of {} tokens is too large", embd->shape[0]);
  c.n_vocab = static_cast<int>(embd->shape[0]);
  c.tied_embeddings = gguf.find_tensor("output.weight") == nullptr;
  c.qkv_bias = gguf.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm = gguf.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  c.rope_freq_factors = gguf.find_tensor("rope_freqs.weight") != nullptr;
  return c;
}

LoadedModel load_gguf_model(const std::filesystem::path& path) {
  LoadedModel model;
  model.format = ModelFormat::Gguf;
  model.path = path;
  model.gguf = open_gguf_model_file(path);
  model.config = gguf_model_config(*model.gguf);
  if (model.config.name.empty()) {
    const std::optional<GgufSplitName> split = parse_gguf_split_name(path.string());
    model.config.name =
        split ? std::filesystem::path(split->prefix).filename().string() : path.stem().string();
  }
  model.weights.keep_alive(model.gguf);
  model.weights.add_mapping(model.gguf->mapping());
  for (const auto& part : model.gguf->split_parts()) model.weights.add_mapping(part->mapping());
  for (const GgufTensorInfo& info : model.gguf->tensors())
    model.weights.add(info.name, info.view());
  return model;
}

}  // namespace torchless
