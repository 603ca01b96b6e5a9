// Vocabulary from a Hugging Face tokenizer directory: tokenizer.json (model "BPE", byte-level or
// SentencePiece-style with byte fallback), tokenizer_config.json (add_bos/add_eos, special
// tokens, chat_template) and generation_config.json (extra end-of-generation ids).
#include <fstream>

#include <nlohmann/json.hpp>

#include "torchless/core/error.h"
#include "torchless/tokenizer/vocab.h"

namespace torchless {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The GPT-2 split that HF's ByteLevel pre-tokenizer applies when use_regex is true.
constexpr const char* kByteLevelRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

json read_json(const fs::path& path) {
  std::ifstream file(path);
  if (!file) fail("{}: cannot open", path.string());
  try {
    return json::parse(file);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
}

std::optional<json> read_optional_json(const fs::path& path) {
  if (!fs::is_regular_file(path)) return std::nullopt;
  return read_json(path);
}

// Every object with "type": `type` anywhere inside `j` (pre_tokenizers, decoders, ...).
bool contains_type(const json& j, std::string_view type) {
  if (j.is_object()) {
    if (j.contains("type") && j["type"].is_string() && j["type"].get<std::string>() == type) {
      return true;
    }
    for (const auto& [key, value] : j.items()) {
      if (contains_type(value, type)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& value : j) {
      if (contains_type(value, type)) return true;
    }
  }
  return false;
}

const json* find_type(const json& j, std::string_view type) {
  if (j.is_object() && j.value("type", "") == type) return &j;
  if (j.is_object() || j.is_array()) {
    for (const auto& value : j) {
      if (const json* found = find_type(value, type)) return found;
    }
  }
  return nullptr;
}

// Metaspace prepends U+2581 unless told not to (prepend_scheme "never", or the older
// add_prefix_space false).
bool metaspace_prepends(const json& pre) {
  const json* m = find_type(pre, "Metaspace");
  if (!m) return false;
  if (m->contains("prepend_scheme") && (*m)["prepend_scheme"].is_string()) {
    return (*m)["prepend_scheme"].get<std::string>() != "never";
  }
  return m->value("add_prefix_space", true);
}

std::string quote_literal(const std::string& s) {
  return "\\Q" + s + "\\E";
}

void collect_split_regexes(const json& pre, std::vector<std::string>& out) {
  if (pre.is_null()) return;
  const std::string type = pre.value("type", "");
  if (type == "Sequence") {
    for (const auto& p : pre.at("pretokenizers")) collect_split_regexes(p, out);
  } else if (type == "Split") {
    if (pre.value("behavior", "Isolated") != "Isolated" || pre.value("invert", false)) {
      fail("unsupported Split pre-tokenizer (only behavior Isolated, not inverted)");
    }
    const json& pattern = pre.at("pattern");
    if (pattern.contains("Regex")) {
      out.push_back(pattern["Regex"].get<std::string>());
    } else {
      out.push_back(quote_literal(pattern.at("String").get<std::string>()));
    }
  } else if (type == "ByteLevel") {
    if (pre.value("use_regex", true)) out.push_back(kByteLevelRegex);
  } else if (type == "Digits") {
    out.push_back(pre.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "Punctuation") {
    out.push_back(R"(\p{P})");
  } else if (type != "Metaspace") {
    fail("unsupported pre-tokenizer type '{}'", type);
  }
}

std::pair<std::string, std::string> parse_merge(const json& m) {
  if (m.is_array() && m.size() == 2) return {m[0].get<std::string>(), m[1].get<std::string>()};
  const std::string line = m.get<std::string>();
  const size_t pos = line.find(' ', 1);
  if (pos == std::string::npos) fail("malformed merge '{}'", line);
  return {line.substr(0, pos), line.substr(pos + 1)};
}

// HF writes special tokens as "text" or {"content": "text", ...}.
std::optional<std::string> token_content(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return std::nullopt;
}

int32_t id_of(const Vocab& vocab, const std::string& text) {
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    if (vocab.tokens[i].text == text) return static_cast<int32_t>(i);
  }
  return -1;
}

// Far above any real vocabulary (~260K); ids are indices, so a bigger one would make the loader
// allocate for it (a hostile file could ask for 2^64 tokens).
constexpr size_t kMaxTokenId = size_t{1} << 22;

size_t token_index(const json& id) {
  if (!id.is_number_unsigned() || id.get<uint64_t>() >= kMaxTokenId) {
    fail("token id {} is not an integer in [0, {})", id.dump(), kMaxTokenId);
  }
  return static_cast<size_t>(id.get<uint64_t>());
}

void read_model(const json& model, Vocab& vocab) {
  if (model.value("type", "") != "BPE") {
    fail("unsupported tokenizer model '{}' (only BPE)", model.value("type", "?"));
  }
  const json& entries = model.at("vocab");
  size_t n = 0;
  for (const auto& [text, id] : entries.items()) n = std::max(n, token_index(id) + 1);
  vocab.tokens.resize(n);
  for (auto& t : vocab.tokens) t.type = TokenType::Unused;  // ids the file leaves out
  for (const auto& [text, id] : entries.items()) {
    VocabToken& token = vocab.tokens[token_index(id)];
    token.text = text;
    token.type = TokenType::Normal;
  }
  for (const auto& m : model.value("merges", json::array())) vocab.merges.push_back(parse_merge(m));
  vocab.ignore_merges = model.value("ignore_merges", false);
}

void read_added_tokens(const json& added, const std::optional<std::string>& unk, Vocab& vocab) {
  for (const auto& a : added) {
    const size_t id = token_index(a.at("id"));
    if (id >= vocab.tokens.size()) vocab.tokens.resize(id + 1);
    VocabToken& token = vocab.tokens[id];
    token.text = a.at("content").get<std::string>();
    token.type = a.value("special", false) ? TokenType::Control : TokenType::UserDefined;
    if (unk && token.text == *unk) token.type = TokenType::Unknown;
    token.lstrip = a.value("lstrip", false);
    token.rstrip = a.value("rstrip", false);
  }
}

// SentencePiece-style files carry merges, not scores: a piece's score is minus the rank of the
// first merge that builds it, so merging by score follows the merge order.
void scores_from_merges(Vocab& vocab) {
  std::unordered_map<std::string, float> best;
  for (size_t i = vocab.merges.size(); i-- > 0;) {
    best[vocab.merges[i].first + vocab.merges[i].second] = -static_cast<float>(i);
  }
  for (auto& token : vocab.tokens) {
    auto it = best.find(token.text);
    token.score = it != best.end() ? it->second : -1e30f;
    const bool byte =
        token.text.size() == 6 && token.text.starts_with("<0x") && token.text.back() == '>';
    if (byte && token.type == TokenType::Normal) token.type = TokenType::Byte;
  }
}

// add_bos/add_eos from a TemplateProcessing post-processor: "single" is [BOS?, $A, EOS?].
void read_post_processor(const json& post, Vocab& vocab) {
  if (post.is_null()) return;
  if (post.value("type", "") == "Sequence") {
    for (const auto& p : post.value("processors", json::array())) read_post_processor(p, vocab);
    return;
  }
  if (post.value("type", "") != "TemplateProcessing") return;
  const json& single = post.value("single", json::array());
  bool seen_sequence = false;
  for (const auto& item : single) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      const int32_t id = id_of(vocab, item["SpecialToken"].value("id", ""));
      if (id < 0) continue;
      if (seen_sequence) {
        vocab.add_eos = true;
        vocab.eos = id;
      } else {
        vocab.add_bos = true;
        vocab.bos = id;
      }
    }
  }
}

void read_tokenizer_config(const json& config, Vocab& vocab) {
  if (auto bos = token_content(config, "bos_token")) vocab.bos = id_of(vocab, *bos);
  if (auto eos = token_content(config, "eos_token")) vocab.eos = id_of(vocab, *eos);
  if (auto unk = token_content(config, "unk_token")) vocab.unk = id_of(vocab, *unk);
  if (auto pad = token_content(config, "pad_token")) vocab.pad = id_of(vocab, *pad);
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    vocab.add_bos = config["add_bos_token"].get<bool>();
  }
  if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean()) {
    vocab.add_eos = config["add_eos_token"].get<bool>();
  }
  if (config.contains("chat_template")) {
    const json& t = config["chat_template"];
    if (t.is_string()) {
      vocab.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // named templates: take "default", else the first
      for (const auto& named : t) {
        if (!vocab.chat_template || named.value("name", "") == "default") {
          vocab.chat_template = named.value("template", "");
        }
      }
    }
  }
}

void read_generation_config(const json& config, Vocab& vocab) {
  if (!config.contains("eos_token_id")) return;
  const json& eos = config["eos_token_id"];
  if (eos.is_number_integer()) vocab.eog.push_back(eos.get<int32_t>());
  if (eos.is_array()) {
    for (const auto& id : eos) {
      if (id.is_number_integer()) vocab.eog.push_back(id.get<int32_t>());
    }
  }
}

Vocab read_hf_vocab(const fs::path& dir) {
  const json tok = read_json(dir / "tokenizer.json");
  Vocab vocab;
  vocab.source = (dir / "tokenizer.json").string();
  const json& model = tok.at("model");
  const json pre = tok.value("pre_tokenizer", json());
  const bool byte_level =
      contains_type(pre, "ByteLevel") || contains_type(tok.value("decoder", json()), "ByteLevel");
  vocab.model_type = byte_level ? "gpt2" : "llama";
  vocab.pre_type = "tokenizer.json";
  apply_model_defaults(vocab);
  vocab.bos = vocab.eos = vocab.unk = -1;
  vocab.add_bos = false;
  read_model(model, vocab);
  std::optional<std::string> unk;
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    unk = model["unk_token"].get<std::string>();
  }
  read_added_tokens(tok.value("added_tokens", json::array()), unk, vocab);
  if (unk) vocab.unk = id_of(vocab, *unk);
  if (byte_level) {
    collect_split_regexes(pre, vocab.split_regexes);
    vocab.explicit_split_regexes = true;
  } else {
    // Prepend("▁") in the normalizer (Llama 2) or Metaspace prepending (newer files).
    const json normalizer = tok.value("normalizer", json());
    vocab.add_space_prefix = contains_type(normalizer, "Prepend") || metaspace_prepends(pre);
    scores_from_merges(vocab);
  }
  read_post_processor(tok.value("post_processor", json()), vocab);
  return vocab;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_from_hf(const fs::path& dir) {
  if (!fs::is_regular_file(dir / "tokenizer.json")) {
    fail("{}: no tokenizer.json in this directory", dir.string());
  }
  Vocab vocab;
  try {
    vocab = read_hf_vocab(dir);
    if (auto config = read_optional_json(dir / "tokenizer_config.json")) {
      read_tokenizer_config(*config, vocab);
    }
    if (auto gen = read_optional_json(dir / "generation_config.json")) {
      read_generation_config(*gen, vocab);
    }
  } catch (const json::exception& e) {
    fail("{}: unexpected tokenizer.json content: {}", dir.string(), e.what());
  } catch (const Error& e) {
    fail("{}: {}", dir.string(), e.what());
  }
  return make_tokenizer(std::move(vocab));
}

}  // namespace torchless
