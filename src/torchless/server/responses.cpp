#include "torchless/server/responses.h"

namespace torchless::server {
namespace {

using nlohmann::json;

bool is_chat(const ResponseMeta& meta) {
  return meta.endpoint == Endpoint::ChatCompletions;
}

json nullable(const std::string& s) {
  return s.empty() ? json() : json(s);
}

json bytes_of(const std::string& s) {
  json out = json::array();
  for (const char c : s) out.push_back(static_cast<unsigned char>(c));
  return out;
}

json head(const ResponseMeta& meta, const char* object) {
  return {{"id", meta.id},
          {"object", object},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", nullptr}};
}

}  // namespace

json usage_json(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

json logprobs_json(Endpoint endpoint, const std::vector<TokenLogprob>& tokens, size_t text_offset) {
  if (endpoint == Endpoint::ChatCompletions) {
    json content = json::array();
    for (const TokenLogprob& t : tokens) {
      json top = json::array();
      for (const auto& [piece, logprob] : t.top) {
        top.push_back({{"token", piece}, {"logprob", logprob}, {"bytes", bytes_of(piece)}});
      }
      content.push_back({{"token", t.token},
                         {"logprob", t.logprob},
                         {"bytes", bytes_of(t.token)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}, {"refusal", nullptr}};
  }
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const TokenLogprob& t : tokens) {
    out["tokens"].push_back(t.token);
    out["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (const auto& [piece, logprob] : t.top) top[piece] = logprob;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(text_offset);
    text_offset += t.token.size();
  }
  return out;
}

json completion_json(const ResponseMeta& meta, const std::string& text,
                     const std::string& finish_reason, const Usage& usage,
                     const std::optional<json>& logprobs) {
  json choice = {{"index", 0},
                 {"logprobs", logprobs ? *logprobs : json()},
                 {"finish_reason", nullable(finish_reason)}};
  if (is_chat(meta)) {
    choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  } else {
    choice["text"] = text;
  }
  json out = head(meta, is_chat(meta) ? "chat.completion" : "text_completion");
  out["choices"] = json::array({choice});
  out["usage"] = usage_json(usage);
  return out;
}

json chunk_json(const ResponseMeta& meta, const std::string& text, bool role,
                const std::string& finish_reason, const std::optional<json>& logprobs,
                bool with_usage) {
  json choice = {{"index", 0},
                 {"logprobs", logprobs ? *logprobs : json()},
                 {"finish_reason", nullable(finish_reason)}};
  if (is_chat(meta)) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (role || !text.empty()) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  json out = head(meta, is_chat(meta) ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array({choice});
  if (with_usage) out["usage"] = nullptr;
  return out;
}

json usage_chunk_json(const ResponseMeta& meta, const Usage& usage) {
  json out = head(meta, is_chat(meta) ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const json& value) {
  return "data: " + dump(value) + "\n\n";
}

}  // namespace torchless::server
