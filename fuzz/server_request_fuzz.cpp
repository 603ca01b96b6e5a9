// libFuzzer target for the server's request parser: the input is an HTTP request body, the
// first byte picks the endpoint. Every body must parse to a request or an ApiError with a 4xx
// status; parsing must never throw, crash, trip a sanitizer or hang. A request it accepts must
// hold only what the server can run (token ids in the vocabulary, values in their ranges).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "torchless/server/request_parser.h"

namespace {

using namespace torchless::server;

void check_error(const ApiError& e) {
  if (e.status < 400 || e.status > 499 || e.message.empty()) std::abort();
}

void check_generation(const GenerationRequest& r, const RequestLimits& limits) {
  for (const int32_t id : r.prompt_ids) {
    if (id < 0 || id >= limits.n_vocab) std::abort();
  }
  for (const auto& [id, bias] : r.sampling.logit_bias) {
    if (id < 0 || id >= limits.n_vocab || !(bias >= -100 && bias <= 100)) std::abort();
  }
  if (!(r.sampling.temperature >= 0 && r.sampling.temperature <= 2)) std::abort();
  if (r.max_tokens == 0 || r.max_tokens < -1) std::abort();
  if (r.top_logprobs < 0 || r.top_logprobs > limits.max_top_logprobs) std::abort();
  if (r.endpoint == Endpoint::ChatCompletions && r.messages.empty()) std::abort();
  if (r.endpoint == Endpoint::Completions && r.prompt.empty() && r.prompt_ids.empty()) {
    std::abort();
  }
  // JSON output (response_format json_object) is a chat completions field only.
  if (r.endpoint == Endpoint::Completions && r.format != torchless::OutputFormat::Text) {
    std::abort();
  }
}

template <typename T, typename Check>
void check(const Parsed<T>& parsed, Check&& check_value) {
  if (const auto* e = std::get_if<ApiError>(&parsed)) {
    check_error(*e);
  } else {
    check_value(std::get<T>(parsed));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  RequestLimits limits;
  limits.n_vocab = 32000;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto generation = [&](const GenerationRequest& r) { check_generation(r, limits); };
  switch (data[0] % 4) {
    case 0:
      check(parse_chat_completion_request(body, limits), generation);
      break;
    case 1:
      check(parse_completion_request(body, limits), generation);
      break;
    case 2:
      check(parse_tokenize_request(body), [](const TokenizeRequest&) {});
      break;
    default:
      check(parse_detokenize_request(body, limits), [&](const DetokenizeRequest& r) {
        for (const int32_t id : r.tokens) {
          if (id < 0 || id >= limits.n_vocab) std::abort();
        }
      });
      break;
  }
  return 0;
}
