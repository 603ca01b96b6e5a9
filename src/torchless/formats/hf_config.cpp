#include "torchless/formats/hf_config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "torchless/core/error.h"

namespace torchless {
namespace {

using nlohmann::json;

constexpr std::string_view kSupportedTypes = "llama, mistral, qwen2, qwen3";

// One config.json and the label used in its error messages.
class ConfigReader {
 public:
  ConfigReader(const json& root, std::string label) : root_(root), label_(std::move(label)) {}

  const json* find(const json& obj, std::string_view key) const {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }

  int get_int(const json& obj, std::string_view key, std::optional<int64_t> fallback,
              int64_t min_value = 1,
              int64_t max_value = std::numeric_limits<int32_t>::max()) const {
    const json* v = find(obj, key);
    if (!v) {
      if (!fallback) fail("{}: missing '{}'", label_, key);
      return static_cast<int>(*fallback);
    }
    if (!v->is_number_integer())
      fail("{}: '{}' must be an integer, got {}", label_, key, v->dump());
    const bool too_large =
        v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max_value);
    const int64_t x = too_large ? max_value : v->get<int64_t>();
    if (too_large || x < min_value || x > max_value) {
      fail("{}: '{}' = {} is outside [{}, {}]", label_, key, v->dump(), min_value, max_value);
    }
    return static_cast<int>(x);
  }
  int get_int(std::string_view key, std::optional<int64_t> fallback) const {
    return get_int(root_, key, fallback);
  }

  double get_float(const json& obj, std::string_view key, double fallback) const {
    const json* v = find(obj, key);
    if (!v) return fallback;
    if (!v->is_number()) fail("{}: '{}' must be a number, got {}", label_, key, v->dump());
    const double x = v->get<double>();
    if (!std::isfinite(x) || x <= 0) fail("{}: '{}' = {} must be positive", label_, key, v->dump());
    return x;
  }

  bool get_bool(std::string_view key, bool fallback) const {
    const json* v = find(root_, key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail("{}: '{}' must be true or false, got {}", label_, key, v->dump());
    return v->get<bool>();
  }

  std::string get_string(const json& obj, std::string_view key, std::string fallback) const {
    const json* v = find(obj, key);
    if (!v) return fallback;
    if (!v->is_string()) fail("{}: '{}' must be a string, got {}", label_, key, v->dump());
    return v->get<std::string>();
  }

  const json& root() const { return root_; }
  const std::string& label() const { return label_; }

 private:
  const json& root_;
  std::string label_;
};

// Defaults are those of the transformers config classes (LlamaConfig, MistralConfig, ...).
int default_context(std::string_view model_type) {
  if (model_type == "llama") return 2048;
  if (model_type == "mistral") return 4096 * 32;
  return 32768;
}

void read_shape(const ConfigReader& r, ModelConfig& c) {
  c.n_vocab = r.get_int("vocab_size", std::nullopt);
  c.n_embd = r.get_int("hidden_size", std::nullopt);
  c.n_ff = r.get_int("intermediate_size", std::nullopt);
  c.n_layers = r.get_int("num_hidden_layers", std::nullopt);
  c.n_heads = r.get_int("num_attention_heads", std::nullopt);
  c.n_kv_heads = r.get_int("num_key_value_heads", c.n_heads);
  c.head_dim = r.get_int("head_dim", c.n_embd / c.n_heads);
  c.n_ctx_train = r.get_int("max_position_embeddings", default_context(c.architecture));
  c.norm_eps = static_cast<float>(r.get_float(r.root(), "rms_norm_eps", 1e-6));
}

void read_rope_scaling(const ConfigReader& r, const json& params, ModelConfig& c) {
  // transformers 4 wrote "type" before "rope_type".
  std::string type = r.get_string(params, "rope_type", r.get_string(params, "type", "default"));
  if (type == "default") return;
  if (type == "linear") {
    c.rope_scaling = RopeScaling::Linear;
    c.rope_scaling_factor = static_cast<float>(r.get_float(params, "factor", 1.0));
  } else if (type == "llama3") {
    c.rope_scaling = RopeScaling::Llama3;
    c.rope_scaling_factor = static_cast<float>(r.get_float(params, "factor", 8.0));
    c.rope_low_freq_factor = static_cast<float>(r.get_float(params, "low_freq_factor", 1.0));
    c.rope_high_freq_factor = static_cast<float>(r.get_float(params, "high_freq_factor", 4.0));
    c.rope_original_context = r.get_int(params, "original_max_position_embeddings", 8192);
    if (c.rope_high_freq_factor <= c.rope_low_freq_factor) {
      fail("{}: llama3 rope scaling needs high_freq_factor > low_freq_factor", r.label());
    }
  } else if (type == "yarn") {
    c.rope_scaling = RopeScaling::Yarn;
    c.rope_scaling_factor = static_cast<float>(r.get_float(params, "factor", 1.0));
    c.rope_original_context = r.get_int(params, "original_max_position_embeddings", c.n_ctx_train);
  } else {
    fail("{}: rope scaling type '{}' is not supported (supported: default, linear, llama3, yarn)",
         r.label(), type);
  }
}

void read_rope(const ConfigReader& r, ModelConfig& c) {
  c.rope_neox = true;  // Hugging Face rotates halves: pairs (x[i], x[i + head_dim/2])
  // transformers 5 keeps everything in rope_parameters; transformers 4 at top level.
  const json* params = r.find(r.root(), "rope_parameters");
  if (params && !params->is_object()) fail("{}: 'rope_parameters' must be an object", r.label());
  if (params && !params->contains("rope_type") && !params->contains("rope_theta")) {
    fail("{}: per-layer-type rope_parameters are not supported", r.label());
  }
  c.rope_theta = static_cast<float>(r.get_float(params ? *params : r.root(), "rope_theta",
                                                r.get_float(r.root(), "rope_theta", 10000.0)));
  const json* scaling = params ? params : r.find(r.root(), "rope_scaling");
  if (scaling && !scaling->is_object()) fail("{}: 'rope_scaling' must be an object", r.label());
  if (scaling) read_rope_scaling(r, *scaling, c);
  const double partial = r.get_float(params ? *params : r.root(), "partial_rotary_factor", 1.0);
  if (partial != 1.0) fail("{}: partial_rotary_factor {} is not supported", r.label(), partial);
}

// transformers applies a window per layer ("layer_types"); ModelConfig has one window for all
// layers, so a mix of windowed and full layers is refused rather than run wrongly.
void read_sliding_window(const ConfigReader& r, ModelConfig& c) {
  const std::string& type = c.architecture;
  if (type == "llama") return;
  const int window = r.get_int(r.root(), "sliding_window", 0, 0);
  bool windowed = window > 0;
  if (type == "qwen2" || type == "qwen3")
    windowed = windowed && r.get_bool("use_sliding_window", false);
  if (const json* layer_types = r.find(r.root(), "layer_types")) {
    if (!layer_types->is_array()) fail("{}: 'layer_types' must be an array", r.label());
    size_t n_sliding = 0;
    for (const json& t : *layer_types) n_sliding += t == "sliding_attention" ? 1 : 0;
    if (n_sliding != 0 && n_sliding != layer_types->size()) {
      fail(
          "{}: {} of {} layers use sliding-window attention; torchless supports a window on all "
          "layers or none",
          r.label(), n_sliding, layer_types->size());
    }
    if (n_sliding != 0 && window == 0)
      fail("{}: sliding_attention layers without 'sliding_window'", r.label());
    windowed = n_sliding != 0;
  } else if (windowed && type != "mistral") {
    // Without layer_types, Qwen windows only the layers from max_window_layers on.
    const int first = r.get_int(r.root(), "max_window_layers", c.n_layers, 0);
    if (first >= c.n_layers)
      windowed = false;
    else if (first != 0) {
      fail("{}: sliding window from layer {} of {} is not supported (all layers or none)",
           r.label(), first, c.n_layers);
    }
  }
  c.sliding_window = windowed ? window : 0;
}

void check_unsupported(const ConfigReader& r) {
  const std::string act = r.get_string(r.root(), "hidden_act", "silu");
  if (act != "silu") fail("{}: hidden_act '{}' is not supported (only silu)", r.label(), act);
  if (r.get_bool("mlp_bias", false)) fail("{}: mlp_bias is not supported", r.label());
}

}  // namespace

ModelConfig parse_hf_config(std::string_view json_text, const std::string& label) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", label, e.what());
  }
  if (!root.is_object()) fail("{}: not a JSON object", label);
  const ConfigReader r(root, label);
  ModelConfig c;
  c.architecture = r.get_string(root, "model_type", "");
  if (c.architecture.empty()) fail("{}: missing 'model_type'", label);
  if (c.architecture != "llama" && c.architecture != "mistral" && c.architecture != "qwen2" &&
      c.architecture != "qwen3") {
    fail("{}: model_type '{}' is not supported (supported: {})", label, c.architecture,
         kSupportedTypes);
  }
  check_unsupported(r);
  read_shape(r, c);
  read_rope(r, c);
  read_sliding_window(r, c);
  c.tied_embeddings = r.get_bool("tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases (hard-wired in transformers); the others follow attention_bias.
  c.qkv_bias = c.architecture == "qwen2" || r.get_bool("attention_bias", false);
  c.qk_norm = c.architecture == "qwen3";
  return c;
}

ModelConfig read_hf_config(const std::filesystem::path& config_json) {
  std::ifstream in(config_json, std::ios::binary);
  if (!in) fail("cannot open '{}'", config_json.string());
  std::ostringstream text;
  text << in.rdbuf();
  ModelConfig c = parse_hf_config(text.str(), config_json.string());
  c.name = config_json.parent_path().filename().string();
  return c;
}

}  // namespace torchless
