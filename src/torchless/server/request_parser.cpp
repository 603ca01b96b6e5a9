#include "torchless/server/request_parser.h"

#include <cmath>
#include <exception>
#include <limits>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace torchless::server {
namespace {

using nlohmann::json;

// OpenAI's default for the legacy completions endpoint (chat has no limit but the context).
constexpr int kDefaultCompletionTokens = 16;

// Thrown inside the parser only; the entry points turn it into their result.
struct Rejected {
  ApiError error;
};

[[noreturn]] void reject(std::string param, std::string message) {
  throw Rejected{invalid_request(std::move(message), std::move(param))};
}

json parse_object(std::string_view body) {
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    // nlohmann's message names the byte offset and what it expected (also for invalid UTF-8).
    throw Rejected{invalid_request(fmt::format("the body is not valid JSON: {}", e.what()))};
  }
  if (!doc.is_object()) throw Rejected{invalid_request("the body must be a JSON object")};
  return doc;
}

// The field, or nullptr when it is absent or null (OpenAI treats both as "not given").
const json* field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const json& object, const char* name, bool fallback) {
  const json* v = field(object, name);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) reject(name, fmt::format("'{}' must be a boolean", name));
  return v->get<bool>();
}

int64_t get_int(const json& object, const char* name, int64_t fallback, int64_t min, int64_t max) {
  const json* v = field(object, name);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) reject(name, fmt::format("'{}' must be an integer", name));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)) {
    reject(name, fmt::format("'{}' must be between {} and {}", name, min, max));
  }
  const int64_t value = v->get<int64_t>();
  if (value < min || value > max) {
    reject(name, fmt::format("'{}' must be between {} and {}, got {}", name, min, max, value));
  }
  return value;
}

float get_number(const json& object, const char* name, float fallback, double min, double max) {
  const json* v = field(object, name);
  if (v == nullptr) return fallback;
  if (!v->is_number()) reject(name, fmt::format("'{}' must be a number", name));
  const double value = v->get<double>();
  if (!std::isfinite(value) || value < min || value > max) {
    reject(name, fmt::format("'{}' must be between {} and {}", name, min, max));
  }
  return static_cast<float>(value);
}

std::string get_string(const json& value, const std::string& param) {
  if (!value.is_string()) reject(param, fmt::format("'{}' must be a string", param));
  return value.get<std::string>();
}

int32_t get_token_id(const json& value, const std::string& param, int32_t n_vocab) {
  if (!value.is_number_integer()) reject(param, fmt::format("'{}' must hold token ids", param));
  // nlohmann keeps non-negative integers unsigned; beyond INT64_MAX they are out of range anyway.
  const int64_t id =
      value.is_number_unsigned() && value.get<uint64_t>() > INT32_MAX ? -1 : value.get<int64_t>();
  if (id < 0 || id >= n_vocab) {
    reject(param, fmt::format("'{}': token id {} is outside the vocabulary of {}", param,
                              value.dump(), n_vocab));
  }
  return static_cast<int32_t>(id);
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string message_content(const json& message, const std::string& param, bool may_be_null) {
  const json* content = field(message, "content");
  if (content == nullptr) {
    if (may_be_null) return {};
    reject(param + ".content", fmt::format("'{}.content' is required", param));
  }
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) {
    reject(param + ".content", fmt::format("'{}.content' must be a string or an array", param));
  }
  std::string text;
  for (size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string where = fmt::format("{}.content[{}]", param, i);
    if (!part.is_object()) reject(where, fmt::format("'{}' must be an object", where));
    const json* type = field(part, "type");
    if (type == nullptr || !type->is_string() || type->get<std::string>() != "text") {
      reject(where + ".type",
             fmt::format("'{}.type' must be \"text\" (this server reads text only)", where));
    }
    const json* part_text = field(part, "text");
    if (part_text == nullptr) reject(where + ".text", fmt::format("'{}.text' is required", where));
    text += get_string(*part_text, where + ".text");
  }
  return text;
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* messages = field(body, "messages");
  if (messages == nullptr) reject("messages", "'messages' is required");
  if (!messages->is_array()) reject("messages", "'messages' must be an array");
  if (messages->empty()) reject("messages", "'messages' must hold at least one message");
  std::vector<ChatMessage> out;
  out.reserve(messages->size());
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object()) reject(param, fmt::format("'{}' must be an object", param));
    const json* role = field(m, "role");
    if (role == nullptr) reject(param + ".role", fmt::format("'{}.role' is required", param));
    std::string r = get_string(*role, param + ".role");
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant") {
      reject(param + ".role",
             fmt::format("'{}.role' must be system, developer, user or assistant", param));
    }
    const std::string content = message_content(m, param, r == "assistant");
    out.push_back({std::move(r), content});
  }
  return out;
}

std::vector<std::string> parse_stop(const json& body, const RequestLimits& limits) {
  const json* stop = field(body, "stop");
  if (stop == nullptr) return {};
  std::vector<std::string> out;
  if (stop->is_string()) {
    out.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    for (size_t i = 0; i < stop->size(); ++i) {
      out.push_back(get_string((*stop)[i], fmt::format("stop[{}]", i)));
    }
  } else {
    reject("stop", "'stop' must be a string or an array of strings");
  }
  if (out.size() > static_cast<size_t>(limits.max_stop_strings)) {
    reject("stop", fmt::format("'stop' holds at most {} strings", limits.max_stop_strings));
  }
  for (const std::string& s : out) {
    if (s.empty()) reject("stop", "stop strings cannot be empty");
    if (s.size() > limits.max_stop_length) {
      reject("stop", fmt::format("stop strings are at most {} bytes", limits.max_stop_length));
    }
  }
  return out;
}

std::vector<std::pair<int32_t, float>> parse_logit_bias(const json& body,
                                                        const RequestLimits& limits) {
  const json* bias = field(body, "logit_bias");
  if (bias == nullptr) return {};
  if (!bias->is_object()) reject("logit_bias", "'logit_bias' must map token ids to numbers");
  if (bias->size() > static_cast<size_t>(limits.max_logit_bias)) {
    reject("logit_bias",
           fmt::format("'logit_bias' holds at most {} tokens", limits.max_logit_bias));
  }
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, value] : bias->items()) {
    int64_t id = -1;
    const bool digits = !key.empty() && key.size() <= 10 &&
                        key.find_first_not_of("0123456789") == std::string::npos;
    if (digits) id = std::stoll(key);
    if (id < 0 || id >= limits.n_vocab) {
      reject("logit_bias",
             fmt::format("'logit_bias' key '{}' is not a token id below {}", key, limits.n_vocab));
    }
    if (!value.is_number() || !std::isfinite(value.get<double>()) ||
        std::abs(value.get<double>()) > 100) {
      reject("logit_bias", "'logit_bias' values must be numbers between -100 and 100");
    }
    out.emplace_back(static_cast<int32_t>(id), value.get<float>());
  }
  return out;
}

// response_format: "text", or "json_object" (constrained decoding: the content is one JSON
// object). OpenAI's legacy completions endpoint has no response_format; there the field is
// refused unless it asks for text, rather than ignored, so that nobody parses free text
// believing it is JSON.
OutputFormat parse_response_format(const json& body, Endpoint endpoint) {
  const json* format = field(body, "response_format");
  if (format == nullptr) return OutputFormat::Text;
  if (!format->is_object()) reject("response_format", "'response_format' must be an object");
  const json* type = field(*format, "type");
  if (type == nullptr || !type->is_string()) {
    reject("response_format.type", "'response_format.type' must be a string");
  }
  const std::string t = type->get<std::string>();
  if (t == "text") return OutputFormat::Text;
  if (t != "json_object" && t != "json_schema") {
    reject("response_format.type",
           "'response_format.type' must be text, json_object or json_schema");
  }
  if (endpoint == Endpoint::Completions) {
    reject("response_format",
           "'response_format' is a field of /v1/chat/completions; /v1/completions writes text");
  }
  if (t == "json_schema") {
    reject("response_format.type",
           "response_format 'json_schema' is not supported by this server (no schema-constrained "
           "decoding); 'json_object' is, with the schema described in the prompt");
  }
  return OutputFormat::JsonObject;
}

// The fields both endpoints share: sampling, length, stop, stream.
void parse_common(const json& body, const RequestLimits& limits, GenerationRequest& r) {
  if (const json* model = field(body, "model")) r.model = get_string(*model, "model");
  if (get_int(body, "n", 1, 1, 128) != 1) reject("n", "this server returns one choice ('n': 1)");
  r.stream = get_bool(body, "stream", false);
  if (const json* options = field(body, "stream_options")) {
    if (!options->is_object()) reject("stream_options", "'stream_options' must be an object");
    r.include_usage = get_bool(*options, "include_usage", false);
  }
  constexpr int64_t kMaxTokens = 1 << 20;
  r.max_tokens = static_cast<int>(get_int(body, "max_tokens", -1, 1, kMaxTokens));
  if (field(body, "max_completion_tokens") != nullptr) {
    r.max_tokens = static_cast<int>(get_int(body, "max_completion_tokens", -1, 1, kMaxTokens));
  }
  r.stop = parse_stop(body, limits);

  SamplerOptions& s = r.sampling;
  s.temperature = get_number(body, "temperature", 1.0f, 0.0, 2.0);
  s.top_p = get_number(body, "top_p", 1.0f, 0.0, 1.0);
  s.top_k = static_cast<int>(get_int(body, "top_k", 0, 0, std::numeric_limits<int32_t>::max()));
  s.min_p = get_number(body, "min_p", 0.0f, 0.0, 1.0);
  s.frequency_penalty = get_number(body, "frequency_penalty", 0.0f, -2.0, 2.0);
  s.presence_penalty = get_number(body, "presence_penalty", 0.0f, -2.0, 2.0);
  s.repeat_penalty = get_number(body, "repeat_penalty", 1.0f, 0.0, 10.0);
  s.penalty_last_n = -1;  // OpenAI's penalties count every generated occurrence
  s.logit_bias = parse_logit_bias(body, limits);
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) reject("seed", "'seed' must be an integer");
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                        : static_cast<uint64_t>(seed->get<int64_t>());
    r.seeded = true;
  }
}

template <typename T, typename F>
Parsed<T> guarded(F&& parse) {
  try {
    return parse();
  } catch (const Rejected& r) {
    return r.error;
  } catch (const std::exception& e) {
    // Defensive: a JSON access the checks above missed still gets a 400, never a crash.
    return invalid_request(fmt::format("invalid request: {}", e.what()));
  }
}

}  // namespace

Parsed<GenerationRequest> parse_chat_completion_request(std::string_view body,
                                                        const RequestLimits& limits) {
  return guarded<GenerationRequest>([&] {
    const json doc = parse_object(body);
    GenerationRequest r;
    r.endpoint = Endpoint::ChatCompletions;
    r.messages = parse_messages(doc);
    parse_common(doc, limits, r);
    r.format = parse_response_format(doc, Endpoint::ChatCompletions);
    r.logprobs = get_bool(doc, "logprobs", false);
    r.top_logprobs = static_cast<int>(get_int(doc, "top_logprobs", 0, 0, limits.max_top_logprobs));
    if (r.top_logprobs > 0 && !r.logprobs) {
      reject("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    }
    return r;
  });
}

Parsed<GenerationRequest> parse_completion_request(std::string_view body,
                                                   const RequestLimits& limits) {
  return guarded<GenerationRequest>([&] {
    const json doc = parse_object(body);
    GenerationRequest r;
    r.endpoint = Endpoint::Completions;
    const json* prompt = field(doc, "prompt");
    if (prompt == nullptr) reject("prompt", "'prompt' is required");
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
      r.prompt = (*prompt)[0].get<std::string>();
    } else if (prompt->is_string()) {
      r.prompt = prompt->get<std::string>();
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
      for (size_t i = 0; i < prompt->size(); ++i) {
        r.prompt_ids.push_back(get_token_id((*prompt)[i], "prompt", limits.n_vocab));
      }
    } else {
      reject("prompt",
             "'prompt' must be a string, an array of one string or an array of token ids "
             "(one prompt per request)");
    }
    if (r.prompt.empty() && r.prompt_ids.empty()) reject("prompt", "'prompt' is empty");
    parse_common(doc, limits, r);
    if (r.max_tokens < 0) r.max_tokens = kDefaultCompletionTokens;
    parse_response_format(doc, Endpoint::Completions);
    if (get_bool(doc, "echo", false)) reject("echo", "'echo' is not supported by this server");
    if (get_int(doc, "best_of", 1, 1, 128) != 1) reject("best_of", "'best_of' must be 1");
    if (const json* suffix = field(doc, "suffix")) {
      if (!get_string(*suffix, "suffix").empty()) {
        reject("suffix", "'suffix' is not supported by this server");
      }
    }
    r.top_logprobs = static_cast<int>(get_int(doc, "logprobs", -1, 0, 5));
    r.logprobs = r.top_logprobs >= 0;
    r.top_logprobs = std::max(r.top_logprobs, 0);
    return r;
  });
}

Parsed<TokenizeRequest> parse_tokenize_request(std::string_view body) {
  return guarded<TokenizeRequest>([&] {
    const json doc = parse_object(body);
    TokenizeRequest r;
    const json* content = field(doc, "content");
    if (content == nullptr) reject("content", "'content' is required");
    r.content = get_string(*content, "content");
    r.add_special = get_bool(doc, "add_special", false);
    r.parse_special = get_bool(doc, "parse_special", true);
    r.with_pieces = get_bool(doc, "with_pieces", false);
    return r;
  });
}

Parsed<DetokenizeRequest> parse_detokenize_request(std::string_view body,
                                                   const RequestLimits& limits) {
  return guarded<DetokenizeRequest>([&] {
    const json doc = parse_object(body);
    DetokenizeRequest r;
    const json* tokens = field(doc, "tokens");
    if (tokens == nullptr) reject("tokens", "'tokens' is required");
    if (!tokens->is_array()) reject("tokens", "'tokens' must be an array of token ids");
    for (const json& t : *tokens) r.tokens.push_back(get_token_id(t, "tokens", limits.n_vocab));
    return r;
  });
}

}  // namespace torchless::server
