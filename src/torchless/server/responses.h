#pragma once
// Response bodies and stream chunks in OpenAI's shapes: chat.completion,
// chat.completion.chunk, text_completion (whole and streamed), usage and logprobs.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torchless/server/request_parser.h"

namespace torchless::server {

struct ResponseMeta {
  Endpoint endpoint = Endpoint::ChatCompletions;
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;
  std::string model;
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// One generated token as logprobs report it: its text and the most likely alternatives.
struct TokenLogprob {
  std::string token;  // the token's bytes (may be part of a UTF-8 character)
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;  // (token, logprob), most likely first
};

nlohmann::json usage_json(const Usage& usage);
// Chat: {"content": [...], "refusal": null}; completions: tokens/token_logprobs/top_logprobs/
// text_offset (the offsets count bytes from the start of the generated text).
nlohmann::json logprobs_json(Endpoint endpoint, const std::vector<TokenLogprob>& tokens,
                             size_t text_offset = 0);

// The whole answer of a request that did not stream.
nlohmann::json completion_json(const ResponseMeta& meta, const std::string& text,
                               const std::string& finish_reason, const Usage& usage,
                               const std::optional<nlohmann::json>& logprobs);

// One chunk of a stream. `role`: chat's first chunk carries the assistant role. `finish_reason`
// empty: null. `with_usage`: stream_options.include_usage asks for "usage": null on each chunk.
nlohmann::json chunk_json(const ResponseMeta& meta, const std::string& text, bool role,
                          const std::string& finish_reason,
                          const std::optional<nlohmann::json>& logprobs, bool with_usage);
// The last chunk when include_usage is on: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseMeta& meta, const Usage& usage);

// JSON text of a body or chunk; invalid UTF-8 (a token's partial bytes) becomes U+FFFD.
std::string dump(const nlohmann::json& value);
// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& value);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace torchless::server
