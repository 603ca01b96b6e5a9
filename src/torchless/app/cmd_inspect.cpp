// `torchless inspect FILE [--json]`: what a model file holds. The report is built once as JSON
// (the --json output) and the text view is printed from it, so both always agree. GGUF files
// are read directly (every metadata key, exact tensor types); other formats go through
// load_model() for the config, list safetensors tensors as stored and llama2.c tensors under
// their canonical names, and report the tokenizer the model would run with.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torchless/app/command.h"
#include "torchless/app/hub_model.h"
#include "torchless/core/error.h"
#include "torchless/core/system_memory.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/formats/model_loader.h"
#include "torchless/formats/safetensors_file.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless::app {
namespace {

// Ordered, so that keys print in file order and hyperparameters in kHyperparameterOrder.
using json = nlohmann::ordered_json;

// Arrays longer than this are summarised (length and first items): a vocabulary has 150k entries.
constexpr size_t kMaxArrayItems = 16;
constexpr size_t kArrayHead = 8;

// The hyperparameter keys shown first and in this order (as "<arch>.<suffix>").
constexpr const char* kHyperparameterOrder[] = {
    "context_length",       "embedding_length",       "block_count",
    "feed_forward_length",  "attention.head_count",   "attention.head_count_kv",
    "attention.key_length", "attention.value_length", "attention.layer_norm_rms_epsilon",
    "rope.dimension_count", "rope.freq_base",         "attention.sliding_window",
    "vocab_size",
};

json value_to_json(const GgufValue& value);

json array_to_json(const GgufArray& array) {
  if (array.items.size() <= kMaxArrayItems) {
    json items = json::array();
    for (const GgufValue& item : array.items) items.push_back(value_to_json(item));
    return items;
  }
  json head = json::array();
  for (size_t i = 0; i < kArrayHead; ++i) head.push_back(value_to_json(array.items[i]));
  return json{{"array_of", gguf_type_name(array.element_type)},
              {"length", array.items.size()},
              {"head", head}};
}

json value_to_json(const GgufValue& value) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, GgufArray>) {
          return array_to_json(v);
        } else {
          return v;
        }
      },
      value.value);
}

// `dtype` as the file spells it ("q4_K" in GGUF, "BF16" or "I64" in safetensors).
json tensor_json(const std::string& name, std::string_view dtype, const Shape& shape,
                 size_t nbytes) {
  json dims = json::array();
  for (int d = 0; d < shape.rank(); ++d) dims.push_back(shape[d]);
  return json{{"name", name}, {"dtype", dtype},  {"shape", shape.str()},
              {"dims", dims}, {"bytes", nbytes}, {"elements", shape.numel()}};
}

json totals_json(const json& tensors) {
  int64_t params = 0;
  uint64_t bytes = 0;
  for (const json& t : tensors) {
    params += t["elements"].get<int64_t>();
    bytes += t["bytes"].get<uint64_t>();
  }
  return json{{"tensors", tensors.size()}, {"parameters", params}, {"bytes", bytes}};
}

json gguf_report(const std::filesystem::path& path) {
  const auto file = GgufFile::open(path);
  const std::string arch = file->get_string("general.architecture", "");
  json report{{"file", path.string()},
              {"format", "gguf"},
              {"gguf_version", file->version()},
              {"alignment", file->alignment()},
              {"data_offset", file->data_offset()},
              {"file_bytes", file->file_size()},
              {"architecture", arch}};
  json hyper = json::object(), metadata = json::object();
  for (const char* suffix : kHyperparameterOrder) {
    if (const GgufValue* v = file->find(arch + "." + suffix)) hyper[suffix] = value_to_json(*v);
  }
  const std::string prefix = arch + ".";
  for (const auto& [key, value] : file->metadata()) {
    if (!arch.empty() && key.starts_with(prefix)) {
      const std::string suffix = key.substr(prefix.size());
      if (!hyper.contains(suffix)) hyper[suffix] = value_to_json(value);
    } else {
      metadata[key] = value_to_json(value);
    }
  }
  report["hyperparameters"] = hyper;
  json tokenizer{{"model", file->get_string("tokenizer.ggml.model", "")},
                 {"pre", file->get_string("tokenizer.ggml.pre", "")}};
  if (const GgufValue* tokens = file->find("tokenizer.ggml.tokens")) {
    tokenizer["vocab_size"] = tokens->as_array().items.size();
  }
  report["tokenizer"] = tokenizer;
  report["metadata"] = metadata;
  json tensors = json::array();
  for (const GgufTensorInfo& t : file->tensors()) {
    tensors.push_back(tensor_json(t.name, dtype_name(t.dtype), t.shape, t.nbytes));
  }
  report["totals"] = totals_json(tensors);
  report["tensors"] = tensors;
  return report;
}

std::string_view format_name(ModelFormat format) {
  switch (format) {
    case ModelFormat::Gguf:
      return "gguf";
    case ModelFormat::Safetensors:
      return "safetensors";
    case ModelFormat::Llama2c:
      return "llama2c";
  }
  return "unknown";
}

json config_json(const ModelConfig& c) {
  return json{{"context_length", c.n_ctx_train},
              {"embedding_length", c.n_embd},
              {"block_count", c.n_layers},
              {"feed_forward_length", c.n_ff},
              {"attention.head_count", c.n_heads},
              {"attention.head_count_kv", c.n_kv_heads},
              {"attention.key_length", c.head_dim},
              {"attention.layer_norm_rms_epsilon", c.norm_eps},
              {"rope.freq_base", c.rope_theta},
              {"rope.neox", c.rope_neox},
              {"attention.sliding_window", c.sliding_window},
              {"qkv_bias", c.qkv_bias},
              {"qk_norm", c.qk_norm},
              {"tied_embeddings", c.tied_embeddings},
              {"vocab_size", c.n_vocab}};
}

// The tokenizer a model would run with (tokenizer.json, tokenizer.bin beside the checkpoint),
// or why there is none: `logits` still runs such a model from token ids.
json tokenizer_json(const LoadedModel& model) {
  const int n_vocab = model.config.n_vocab;
  try {
    const auto tok = load_tokenizer(model);
    return json{
        {"model", tok->model_type()}, {"pre", tok->pre_type()}, {"vocab_size", tok->n_vocab()}};
  } catch (const Error& e) {
    return json{{"vocab_size", n_vocab}, {"unavailable", e.what()}};
  }
}

// The tensors as the safetensors files store them (names, dtypes such as "I64" included),
// rather than the engine's canonical view of them.
json safetensors_tensors(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
    }
  } else {
    files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  json tensors = json::array();
  for (const fs::path& file : files) {
    const auto shard = SafetensorsFile::open(file);  // alive while its tensors are read
    for (const SafetensorsTensorInfo& t : shard->tensors()) {
      json entry = tensor_json(t.name, t.dtype_name, t.shape, t.nbytes);
      if (files.size() > 1) entry["file"] = file.filename().string();
      tensors.push_back(std::move(entry));
    }
  }
  return tensors;
}

json loaded_model_report(const std::filesystem::path& path) {
  const LoadedModel model = load_model(path);
  json report{{"file", path.string()},
              {"format", format_name(model.format)},
              {"architecture", model.config.architecture},
              {"name", model.config.name},
              {"hyperparameters", config_json(model.config)},
              {"tokenizer", tokenizer_json(model)},
              {"metadata", json::object()}};
  json tensors = json::array();
  if (model.format == ModelFormat::Safetensors) {
    tensors = safetensors_tensors(path);
  } else {
    for (const auto& [name, view] : model.weights.all()) {
      tensors.push_back(tensor_json(name, dtype_name(view.dtype), view.shape, view.nbytes));
    }
  }
  report["totals"] = totals_json(tensors);
  report["tensors"] = tensors;
  return report;
}

std::string human_bytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < uint64_t{1} << 30)
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  return gib(bytes);
}

// One line per value; summarised arrays print as "[string x 32000] a, b, ...".
std::string text_of(const json& v) {
  constexpr auto kReplace = json::error_handler_t::replace;
  if (v.is_object() && v.contains("array_of")) {
    std::string head;
    for (const json& item : v["head"]) head += text_of(item) + ", ";
    return fmt::format("[{} x {}] {}...", v["array_of"].get<std::string>(),
                       v["length"].get<size_t>(), head);
  }
  return v.dump(-1, ' ', false, kReplace);
}

void print_text(const json& r) {
  fmt::print("file:          {}\n", r["file"].get<std::string>());
  if (r["format"] == "gguf") {
    fmt::print("format:        GGUF v{} (alignment {}, data section at byte {}, {} total)\n",
               r["gguf_version"].get<int>(), r["alignment"].get<size_t>(),
               r["data_offset"].get<size_t>(), human_bytes(r["file_bytes"].get<uint64_t>()));
  } else {
    fmt::print("format:        {}\n", r["format"].get<std::string>());
  }
  fmt::print("architecture:  {}\n", r["architecture"].get<std::string>());
  const json& tok = r["tokenizer"];
  const auto or_dash = [&](const char* key) {
    const std::string v = tok.value(key, "");
    return v.empty() ? std::string("-") : v;
  };
  if (tok.contains("unavailable")) {
    fmt::print("tokenizer:     none ({})\n", tok["unavailable"].get<std::string>());
  } else {
    fmt::print("tokenizer:     {} (pre: {}), {} tokens\n", or_dash("model"), or_dash("pre"),
               tok.contains("vocab_size") ? text_of(tok["vocab_size"]) : "?");
  }
  fmt::print("\nhyperparameters:\n");
  for (const auto& [key, value] : r["hyperparameters"].items()) {
    fmt::print("  {:<40} {}\n", key, text_of(value));
  }
  if (!r["metadata"].empty()) fmt::print("\nmetadata:\n");
  for (const auto& [key, value] : r["metadata"].items()) {
    fmt::print("  {:<40} {}\n", key, text_of(value));
  }
  fmt::print("\ntensors:\n  {:<40} {:<8} {:<22} {:>12}\n", "name", "dtype", "shape", "bytes");
  for (const json& t : r["tensors"]) {
    fmt::print("  {:<40} {:<8} {:<22} {:>12}\n", t["name"].get<std::string>(),
               t["dtype"].get<std::string>(), t["shape"].get<std::string>(),
               t["bytes"].get<uint64_t>());
  }
  const json& totals = r["totals"];
  fmt::print("\ntotals: {} tensors, {} parameters, {} ({} bytes)\n",
             totals["tensors"].get<size_t>(), totals["parameters"].get<int64_t>(),
             human_bytes(totals["bytes"].get<uint64_t>()), totals["bytes"].get<uint64_t>());
}

int run_inspect(std::string path, bool as_json) {
  if (path.empty()) fail("give the model with -m FILE (or as the first argument)");
  // A Hugging Face config.json stands for its directory, as in generate.
  if (std::filesystem::path(path).filename() == "config.json") {
    path = std::filesystem::path(path).parent_path().string();
    if (path.empty()) path = ".";
  }
  const ModelFormat format = detect_model_format(path);
  const json report = format == ModelFormat::Gguf ? gguf_report(path) : loaded_model_report(path);
  if (as_json) {
    fmt::print("{}\n", report.dump(2, ' ', false, json::error_handler_t::replace));
  } else {
    print_text(report);
  }
  return 0;
}

const bool registered = register_command({
    "inspect",
    "Show a model file's format, hyperparameters, tokenizer, metadata and tensors",
    [](CLI::App& sub) -> std::function<int()> {
      auto path = std::make_shared<std::string>();
      auto model = std::make_shared<std::string>();
      auto hf_repo = std::make_shared<std::string>();
      auto as_json = std::make_shared<bool>(false);
      auto* file = sub.add_option(
          "file", *path, "GGUF file, Hugging Face directory or config.json, or llama2.c .bin");
      auto* m = sub.add_option("-m,--model", *model, "the model, as in every other command");
      file->excludes(m);
      add_hf_option(sub, *hf_repo, m);
      sub.get_option("--hf-repo")->excludes(file);
      sub.add_flag("--json", *as_json, "Print the report as JSON");
      return [path, model, hf_repo, as_json] {
        return run_inspect(model_path_or_hub(model->empty() ? *path : *model, *hf_repo), *as_json);
      };
    },
});

}  // namespace
}  // namespace torchless::app
