#include "torchless/hub/file_selection.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_split.h"

namespace torchless::hub {
namespace {

// Tokenizer and generation files a Hugging Face model directory may carry; those present are
// downloaded with the weights.
constexpr const char* kSideFiles[] = {"tokenizer.json",    "tokenizer_config.json",
                                      "tokenizer.model",   "special_tokens_map.json",
                                      "added_tokens.json", "vocab.json",
                                      "merges.txt",        "generation_config.json"};

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// One loadable GGUF model: a single file or all parts of a split one.
struct GgufModel {
  std::vector<std::string> parts;  // the first part first
  uint64_t size = 0;
};

std::vector<GgufModel> gguf_models(const std::vector<RepoFileEntry>& files) {
  std::map<std::string, GgufModel> split;  // by prefix + count
  std::map<std::string, std::vector<std::pair<int, RepoFileEntry>>> split_parts;
  std::vector<GgufModel> models;
  for (const RepoFileEntry& f : files) {
    const std::string name = f.path.substr(f.path.rfind('/') + 1);
    // Vision projectors (mmproj) and other non-model GGUFs are not language models.
    if (!ends_with(upper(f.path), ".GGUF") || upper(name).find("MMPROJ") != std::string::npos) {
      continue;
    }
    if (const auto s = parse_gguf_split_name(f.path)) {
      split_parts[s->prefix + "/" + std::to_string(s->count)].push_back({s->number, f});
    } else {
      models.push_back({{f.path}, f.size});
    }
  }
  for (auto& [key, parts] : split_parts) {
    std::sort(parts.begin(), parts.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const int count = parse_gguf_split_name(parts[0].second.path)->count;
    if (static_cast<int>(parts.size()) != count || parts[0].first != 1) continue;  // incomplete
    GgufModel model;
    for (const auto& [number, file] : parts) {
      model.parts.push_back(file.path);
      model.size += file.size;
    }
    models.push_back(model);
  }
  std::sort(models.begin(), models.end(),
            [](const GgufModel& a, const GgufModel& b) { return a.parts[0] < b.parts[0]; });
  return models;
}

std::string list_models(const std::vector<GgufModel>& models) {
  std::string text;
  for (const GgufModel& m : models) {
    text += fmt::format("{}{} ({})", text.empty() ? "" : ", ", m.parts[0], format_bytes(m.size));
  }
  return text;
}

const GgufModel* smallest(const std::vector<const GgufModel*>& models) {
  if (models.empty()) return nullptr;
  return *std::min_element(models.begin(), models.end(),
                           [](const auto* a, const auto* b) { return a->size < b->size; });
}

// Q4_K_M, else the smallest 4- or 8-bit quantisation, else the only model.
std::optional<GgufModel> default_gguf(const std::vector<GgufModel>& models, std::string& why) {
  std::vector<const GgufModel*> q4km;
  std::vector<const GgufModel*> q4q8;
  static const std::regex q4_or_q8("(^|[^A-Z0-9])I?Q[48](_[A-Z0-9_]*)?([^A-Z0-9_]|$)");
  for (const GgufModel& m : models) {
    const std::string name = upper(m.parts[0].substr(m.parts[0].rfind('/') + 1));
    if (names_quant(m.parts[0], "Q4_K_M")) q4km.push_back(&m);
    if (std::regex_search(name, q4_or_q8)) q4q8.push_back(&m);
  }
  if (const GgufModel* m = smallest(q4km)) {
    why = "Q4_K_M, the default";
    return *m;
  }
  if (const GgufModel* m = smallest(q4q8)) {
    why = "the smallest Q4/Q8 file, as no Q4_K_M is there";
    return *m;
  }
  if (models.size() == 1) {
    why = "the only model file";
    return models[0];
  }
  return std::nullopt;
}

FileSelection select_gguf(const std::vector<GgufModel>& models, const std::string& quant,
                          const std::string& repo) {
  GgufModel chosen;
  std::string why;
  if (!quant.empty()) {
    std::vector<const GgufModel*> matching;
    for (const GgufModel& m : models) {
      if (names_quant(m.parts[0], quant)) matching.push_back(&m);
    }
    if (matching.empty()) {
      fail("{} has no GGUF file for quantisation {}; it has: {}", repo, quant, list_models(models));
    }
    chosen = *smallest(matching);
    why = upper(quant);
  } else if (auto m = default_gguf(models, why)) {
    chosen = *m;
  } else {
    fail("{} has several GGUF models and no Q4_K_M, Q4 or Q8 one: name one as {}:QUANT ({})", repo,
         repo, list_models(models));
  }
  FileSelection s;
  s.files = chosen.parts;
  s.model_path = chosen.parts[0];
  s.description = fmt::format(
      "{} ({}, {}{})", chosen.parts[0], format_bytes(chosen.size), why,
      chosen.parts.size() > 1 ? fmt::format(", {} parts", chosen.parts.size()) : std::string());
  return s;
}

FileSelection select_safetensors(const std::set<std::string>& names, const std::string& repo) {
  FileSelection s;
  s.files.push_back("config.json");
  if (names.count("model.safetensors.index.json")) {
    s.files.push_back("model.safetensors.index.json");
    s.safetensors_index = true;
  } else if (names.count("model.safetensors")) {
    s.files.push_back("model.safetensors");
  } else {
    fail("{} has config.json but neither model.safetensors nor model.safetensors.index.json", repo);
  }
  for (const char* side : kSideFiles) {
    if (names.count(side)) s.files.push_back(side);
  }
  s.description = s.safetensors_index ? "safetensors, sharded" : "safetensors";
  return s;
}

}  // namespace

bool names_quant(const std::string& path, const std::string& quant) {
  if (quant.empty()) return false;
  const std::string name = upper(path.substr(path.rfind('/') + 1));
  const std::string q = upper(quant);
  for (size_t at = name.find(q); at != std::string::npos; at = name.find(q, at + 1)) {
    const bool left = at == 0 || !is_word_char(name[at - 1]) || name[at - 1] == '_';
    const size_t end = at + q.size();
    const bool right = end == name.size() || (!is_word_char(name[end]) && name[end] != '_');
    if (left && right) return true;
  }
  return false;
}

FileSelection select_model_files(const std::vector<RepoFileEntry>& files, const std::string& quant,
                                 const std::string& repo) {
  const std::vector<GgufModel> models = gguf_models(files);
  if (!models.empty()) return select_gguf(models, quant, repo);
  std::set<std::string> names;
  for (const RepoFileEntry& f : files) names.insert(f.path);
  if (names.count("config.json")) {
    if (!quant.empty()) {
      fail(
          "{} is a safetensors repository without GGUF files: drop ':{}' (the quantisation "
          "picks a GGUF file)",
          repo, quant);
    }
    return select_safetensors(names, repo);
  }
  fail("{} has no GGUF file and no config.json with safetensors weights", repo);
}

std::vector<std::string> safetensors_shards(const std::string& index_json) {
  std::set<std::string> shards;
  try {
    const nlohmann::json index = nlohmann::json::parse(index_json);
    for (const auto& [tensor, file] : index.at("weight_map").items()) {
      shards.insert(file.get<std::string>());
    }
  } catch (const nlohmann::json::exception& e) {
    fail("model.safetensors.index.json is malformed: {}", e.what());
  }
  for (const std::string& shard : shards) {
    if (shard.empty() || shard[0] == '/' || shard.find("..") != std::string::npos) {
      fail("model.safetensors.index.json names the shard '{}' outside the repository", shard);
    }
  }
  return {shards.begin(), shards.end()};
}

std::string format_bytes(uint64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < std::size(kUnits)) {
    value /= 1000.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, kUnits[unit]);
}

}  // namespace torchless::hub
