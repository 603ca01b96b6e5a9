#pragma once
// Request bodies -> validated requests, as pure functions of the JSON text (no model, no I/O),
// so that they can be unit-tested and fuzzed. Every problem becomes an ApiError naming the field;
// nothing a client sends can make them throw, and values out of range are refused here rather
// than clamped later. Fields OpenAI defines that torchless does not implement are refused when
// they would change the answer (n > 1, json_schema, echo), and ignored when they would not
// (user, metadata, store).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "torchless/engine/output_format.h"
#include "torchless/engine/sampler.h"
#include "torchless/server/api_error.h"
#include "torchless/tokenizer/chat_template.h"

namespace torchless::server {

// What the parser checks against the loaded model.
struct RequestLimits {
  int32_t n_vocab = 0;  // token ids (prompt arrays, logit_bias keys) must be below it
  int max_stop_strings = 4;
  size_t max_stop_length = 256;
  int max_logit_bias = 1024;
  int max_top_logprobs = 20;
};

enum class Endpoint { ChatCompletions, Completions };

struct GenerationRequest {
  Endpoint endpoint = Endpoint::ChatCompletions;
  std::string model;                  // as sent ("" when absent)
  std::vector<ChatMessage> messages;  // chat completions
  std::string prompt;                 // completions, a text prompt
  std::vector<int32_t> prompt_ids;    // completions, a prompt of token ids (then prompt is "")
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int max_tokens = -1;         // -1: until the end of generation or of the context
  std::vector<std::string> stop;
  SamplerOptions sampling;  // OpenAI's defaults: temperature 1, no top-k/top-p/min-p
  bool seeded = false;      // false: sampling.seed is to be drawn at random
  bool logprobs = false;
  int top_logprobs = 0;  // chat: top_logprobs; completions: the integer `logprobs`
  OutputFormat format = OutputFormat::Text;  // chat: response_format json_object
};

struct TokenizeRequest {
  std::string content;
  bool add_special = false;   // add BOS as a prompt would
  bool parse_special = true;  // "<|im_start|>" becomes its control token
  bool with_pieces = false;
};

struct DetokenizeRequest {
  std::vector<int32_t> tokens;
};

template <typename T>
using Parsed = std::variant<T, ApiError>;

Parsed<GenerationRequest> parse_chat_completion_request(std::string_view body,
                                                        const RequestLimits& limits);
Parsed<GenerationRequest> parse_completion_request(std::string_view body,
                                                   const RequestLimits& limits);
Parsed<TokenizeRequest> parse_tokenize_request(std::string_view body);
Parsed<DetokenizeRequest> parse_detokenize_request(std::string_view body,
                                                   const RequestLimits& limits);

}  // namespace torchless::server
