#include "torchless/formats/safetensors_model.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "torchless/core/error.h"
#include "torchless/formats/hf_config.h"
#include "torchless/formats/safetensors_file.h"

namespace torchless {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kLayerNames = {{
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    // Kept so that validation refuses a model that has it rather than silently dropping it.
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.bias", "ffn_gate.bias"},
    {"mlp.down_proj.bias", "ffn_down.bias"},
}};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}'", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// tensor name -> shard file name, from model.safetensors.index.json.
std::map<std::string, std::string> read_index(const fs::path& index_path) {
  json index;
  try {
    index = json::parse(read_text(index_path));
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", index_path.string(), e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    fail("{}: no 'weight_map' object", index_path.string());
  }
  std::map<std::string, std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) fail("{}: the shard of '{}' is not a string", index_path.string(), name);
    const std::string shard = file.get<std::string>();
    // A shard is a file beside the index; anything else could read outside the model.
    if (shard.empty() || shard.find('/') != std::string::npos ||
        shard.find('\\') != std::string::npos || shard == "." || shard == "..") {
      fail("{}: shard name '{}' of '{}' is not a plain file name", index_path.string(), shard,
           name);
    }
    shards[name] = shard;
  }
  if (shards.empty()) fail("{}: 'weight_map' lists no tensors", index_path.string());
  return shards;
}

// Weights are views into the mapping, except a tensor whose bytes are not aligned to its
// element size (the format allows any header length): that one is copied, so that no kernel
// ever reads a misaligned float.
HostTensorView aligned_view(const SafetensorsTensorInfo& info, WeightStore& store) {
  HostTensorView view = info.view();
  const size_t element = dtype_row_bytes(view.dtype, 1);
  if (reinterpret_cast<uintptr_t>(view.data) % element == 0) return view;
  auto copy = std::make_shared<std::vector<std::byte>>(view.data, view.data + view.nbytes);
  view.data = copy->data();
  store.keep_alive(std::move(copy));
  return view;
}

bool is_qkv_bias(std::string_view name) {
  return name.ends_with(".attn_q.bias") || name.ends_with(".attn_k.bias") ||
         name.ends_with(".attn_v.bias");
}

void add_tensor(const SafetensorsTensorInfo& info, const ModelConfig& config, WeightStore& store) {
  const std::optional<std::string> name = canonical_hf_tensor_name(info.name);
  if (!name) return;
  // With tied embeddings transformers ignores a stored lm_head (it is the embedding), and it
  // ignores q/k/v biases the config does not ask for.
  if (config.tied_embeddings && *name == "output.weight") return;
  if (!config.qkv_bias && is_qkv_bias(*name)) return;
  store.add(*name, aligned_view(info, store));
}

struct ShardSet {
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  std::map<std::string, std::string> index;  // empty for a single file
};

ShardSet open_shards(const fs::path& dir, const fs::path& given) {
  ShardSet set;
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    set.index = read_index(index_path);
    std::map<std::string, std::shared_ptr<SafetensorsFile>> opened;
    for (const auto& [name, shard] : set.index) {
      if (!opened.count(shard)) {
        if (!fs::is_regular_file(dir / shard)) {
          fail("{}: shard '{}' (of tensor '{}') does not exist", index_path.string(), shard, name);
        }
        opened[shard] = SafetensorsFile::open(dir / shard);
      }
    }
    for (auto& [shard, file] : opened) set.files.push_back(file);
    return set;
  }
  fs::path single = dir / "model.safetensors";
  if (given.extension() == ".safetensors") single = given;
  if (!fs::is_regular_file(single)) {
    fail("{}: no model.safetensors or model.safetensors.index.json", dir.string());
  }
  set.files.push_back(SafetensorsFile::open(single));
  return set;
}

}  // namespace

std::optional<std::string> canonical_hf_tensor_name(std::string_view hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  constexpr std::string_view kLayers = "model.layers.";
  if (!hf.starts_with(kLayers)) return std::nullopt;
  hf.remove_prefix(kLayers.size());
  unsigned layer = 0;
  const auto [end, ec] = std::from_chars(hf.data(), hf.data() + hf.size(), layer);
  if (ec != std::errc() || end == hf.data() || *end != '.' ||
      (hf[0] == '0' && end - hf.data() > 1)) {
    return std::nullopt;
  }
  const std::string_view suffix = hf.substr(static_cast<size_t>(end - hf.data()) + 1);
  for (const auto& [from, to] : kLayerNames) {
    if (suffix == from) return fmt::format("blk.{}.{}", layer, to);
  }
  return std::nullopt;
}

LoadedModel load_safetensors_model(const fs::path& path) {
  const fs::path dir = fs::is_directory(path) ? path : path.parent_path();
  LoadedModel model;
  model.format = ModelFormat::Safetensors;
  model.path = dir;
  model.config = read_hf_config(dir / "config.json");
  ShardSet shards = open_shards(dir, path);
  for (const auto& file : shards.files) {
    model.weights.add_mapping(file->mapping());
    const std::string shard = fs::path(file->label()).filename().string();
    for (const SafetensorsTensorInfo& info : file->tensors()) {
      // With an index, a tensor counts only in the shard the index assigns it to.
      if (!shards.index.empty()) {
        auto it = shards.index.find(info.name);
        if (it == shards.index.end() || it->second != shard) continue;
      }
      add_tensor(info, model.config, model.weights);
    }
  }
  for (const auto& [name, shard] : shards.index) {
    bool found = false;
    for (const auto& file : shards.files) {
      found = found || (fs::path(file->label()).filename() == shard && file->find(name));
    }
    if (!found)
      fail("tensor '{}' is listed in model.safetensors.index.json but not in '{}'", name, shard);
  }
  return model;
}

}  // namespace torchless
