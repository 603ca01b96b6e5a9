#include "torchless/server/request_parser.h"

#include <string>

#include <gtest/gtest.h>

namespace torchless::server {
namespace {

RequestLimits limits() {
  RequestLimits l;
  l.n_vocab = 512;
  return l;
}

GenerationRequest chat_ok(const std::string& body) {
  auto parsed = parse_chat_completion_request(body, limits());
  if (auto* e = std::get_if<ApiError>(&parsed)) {
    ADD_FAILURE() << body << " -> " << e->message;
    return {};
  }
  return std::get<GenerationRequest>(parsed);
}

ApiError chat_error(const std::string& body) {
  auto parsed = parse_chat_completion_request(body, limits());
  if (std::holds_alternative<GenerationRequest>(parsed)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<ApiError>(parsed);
}

ApiError completion_error(const std::string& body) {
  auto parsed = parse_completion_request(body, limits());
  if (std::holds_alternative<GenerationRequest>(parsed)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<ApiError>(parsed);
}

TEST(RequestParser, ReadsEveryChatField) {
  const GenerationRequest r = chat_ok(R"({
    "model": "m", "messages": [{"role": "developer", "content": "be brief"},
                               {"role": "user", "content": [{"type": "text", "text": "a"},
                                                            {"type": "text", "text": "b"}]},
                               {"role": "assistant", "content": null}],
    "stream": true, "stream_options": {"include_usage": true}, "temperature": 0.5,
    "top_p": 0.9, "top_k": 7, "min_p": 0.1, "max_completion_tokens": 33, "stop": ["x", "yz"],
    "seed": -3, "frequency_penalty": 0.25, "presence_penalty": -1.5,
    "logit_bias": {"17": -100, "3": 2.5}, "logprobs": true, "top_logprobs": 3,
    "response_format": {"type": "text"}, "user": "ignored"})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
  EXPECT_EQ(r.max_tokens, 33);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(-3));
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, 0.25f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, -1.5f);
  ASSERT_EQ(r.sampling.logit_bias.size(), 2u);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
}

TEST(RequestParser, ChatDefaultsAreOpenAIs) {
  const GenerationRequest r = chat_ok(R"({"messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.max_tokens, -1);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_FALSE(r.seeded);
  EXPECT_FALSE(r.logprobs);
}

TEST(RequestParser, NullMeansNotGiven) {
  const GenerationRequest r = chat_ok(
      R"({"messages": [{"role": "user", "content": "hi"}], "temperature": null, "stop": null,
          "max_tokens": null, "seed": null})");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_TRUE(r.stop.empty());
}

TEST(RequestParser, RefusesMalformedBodiesNamingTheProblem) {
  EXPECT_NE(chat_error("{").message.find("not valid JSON"), std::string::npos);
  EXPECT_NE(chat_error("").message.find("not valid JSON"), std::string::npos);
  EXPECT_NE(chat_error("[1]").message.find("JSON object"), std::string::npos);
  EXPECT_NE(chat_error("{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\"}]}")
                .message.find("UTF-8"),
            std::string::npos);
  EXPECT_EQ(chat_error("{}").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": []})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": "hi"})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [3]})").param, "messages[0]");
  EXPECT_EQ(chat_error(R"({"messages": [{"content": "x"}]})").param, "messages[0].role");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "wizard", "content": "x"}]})").param,
            "messages[0].role");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user"}]})").param, "messages[0].content");
  EXPECT_EQ(
      chat_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").param,
      "messages[0].content[0].type");
}

TEST(RequestParser, RefusesWrongTypesAndAbsurdValues) {
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  const auto param_of = [&](const std::string& field) {
    return chat_error("{" + m + ", " + field + "}").param;
  };
  EXPECT_EQ(param_of(R"("temperature": "hot")"), "temperature");
  EXPECT_EQ(param_of(R"("temperature": 2.5)"), "temperature");
  EXPECT_EQ(param_of(R"("temperature": -0.1)"), "temperature");
  EXPECT_EQ(param_of(R"("top_p": 1.5)"), "top_p");
  EXPECT_EQ(param_of(R"("top_k": -1)"), "top_k");
  EXPECT_EQ(param_of(R"("min_p": 2)"), "min_p");
  EXPECT_EQ(param_of(R"("max_tokens": 0)"), "max_tokens");
  EXPECT_EQ(param_of(R"("max_tokens": 1e300)"), "max_tokens");
  EXPECT_EQ(param_of(R"("max_tokens": 99999999999999999999)"), "max_tokens");
  EXPECT_EQ(param_of(R"("max_tokens": 2.5)"), "max_tokens");
  EXPECT_EQ(param_of(R"("frequency_penalty": 3)"), "frequency_penalty");
  EXPECT_EQ(param_of(R"("presence_penalty": [1])"), "presence_penalty");
  EXPECT_EQ(param_of(R"("stream": "yes")"), "stream");
  EXPECT_EQ(param_of(R"("stop": 5)"), "stop");
  EXPECT_EQ(param_of(R"("stop": [""])"), "stop");
  EXPECT_EQ(param_of(R"("stop": ["a", "b", "c", "d", "e"])"), "stop");
  EXPECT_EQ(param_of(R"("seed": "x")"), "seed");
  EXPECT_EQ(param_of(R"("n": 2)"), "n");
  EXPECT_EQ(param_of(R"("logit_bias": {"abc": 1})"), "logit_bias");
  EXPECT_EQ(param_of(R"("logit_bias": {"512": 1})"), "logit_bias");
  EXPECT_EQ(param_of(R"("logit_bias": {"5": 101})"), "logit_bias");
  EXPECT_EQ(param_of(R"("logit_bias": {"-5": 1})"), "logit_bias");
  EXPECT_EQ(param_of(R"("top_logprobs": 3)"), "top_logprobs");  // without logprobs
  EXPECT_EQ(param_of(R"("logprobs": true, "top_logprobs": 21)"), "top_logprobs");
  EXPECT_EQ(param_of(R"("response_format": {"type": "json_schema"})"), "response_format.type");
  EXPECT_EQ(param_of(R"("response_format": "json")"), "response_format");
}

TEST(RequestParser, ErrorsHaveOpenAIsShape) {
  const ApiError e = chat_error(R"({"messages": 1})");
  const nlohmann::json body = e.body();
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "messages");
  EXPECT_TRUE(body["error"]["code"].is_null());
  EXPECT_TRUE(body["error"]["message"].is_string());
}

TEST(RequestParser, CompletionsTakeTextOrTokenIds) {
  auto text = parse_completion_request(R"({"prompt": ["Once"], "logprobs": 2})", limits());
  ASSERT_TRUE(std::holds_alternative<GenerationRequest>(text));
  const auto& t = std::get<GenerationRequest>(text);
  EXPECT_EQ(t.prompt, "Once");
  EXPECT_EQ(t.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_TRUE(t.logprobs);
  EXPECT_EQ(t.top_logprobs, 2);
  auto ids = parse_completion_request(R"({"prompt": [1, 2, 511], "max_tokens": 4})", limits());
  ASSERT_TRUE(std::holds_alternative<GenerationRequest>(ids));
  EXPECT_EQ(std::get<GenerationRequest>(ids).prompt_ids, (std::vector<int32_t>{1, 2, 511}));
  EXPECT_FALSE(std::get<GenerationRequest>(ids).logprobs);

  EXPECT_EQ(completion_error(R"({})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": ""})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": ["a", "b"]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": [1, 512]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": [1, -1]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": [1, "a"]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": "a", "logprobs": 6})").param, "logprobs");
  EXPECT_EQ(completion_error(R"({"prompt": "a", "echo": true})").param, "echo");
}

TEST(RequestParser, ResponseFormatJsonObjectOnChatOnly) {
  EXPECT_EQ(chat_ok(R"({"messages": [{"role": "user", "content": "x"}]})").format,
            OutputFormat::Text);
  EXPECT_EQ(chat_ok(R"({"messages": [{"role": "user", "content": "x"}],
                        "response_format": {"type": "text"}})")
                .format,
            OutputFormat::Text);
  EXPECT_EQ(chat_ok(R"({"messages": [{"role": "user", "content": "x"}],
                        "response_format": {"type": "json_object"}})")
                .format,
            OutputFormat::JsonObject);
  const ApiError schema = chat_error(R"({"messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}}})");
  EXPECT_EQ(schema.status, 400);
  EXPECT_EQ(schema.param, "response_format.type");
  EXPECT_NE(schema.message.find("json_schema"), std::string::npos);
  EXPECT_NE(schema.message.find("not supported"), std::string::npos);
  // OpenAI's completions endpoint has no response_format: JSON is refused, text is harmless.
  EXPECT_EQ(
      completion_error(R"({"prompt": "a", "response_format": {"type": "json_object"}})").param,
      "response_format");
  auto text =
      parse_completion_request(R"({"prompt": "a", "response_format": {"type": "text"}})", limits());
  ASSERT_TRUE(std::holds_alternative<GenerationRequest>(text));
  EXPECT_EQ(std::get<GenerationRequest>(text).format, OutputFormat::Text);
}

TEST(RequestParser, TokenizeAndDetokenize) {
  auto tok = parse_tokenize_request(R"({"content": "hi", "with_pieces": true})");
  ASSERT_TRUE(std::holds_alternative<TokenizeRequest>(tok));
  EXPECT_TRUE(std::get<TokenizeRequest>(tok).with_pieces);
  EXPECT_TRUE(std::holds_alternative<ApiError>(parse_tokenize_request(R"({"content": 3})")));
  auto detok = parse_detokenize_request(R"({"tokens": [1, 2]})", limits());
  ASSERT_TRUE(std::holds_alternative<DetokenizeRequest>(detok));
  EXPECT_TRUE(std::holds_alternative<ApiError>(
      parse_detokenize_request(R"({"tokens": [9999]})", limits())));
  EXPECT_TRUE(
      std::holds_alternative<ApiError>(parse_detokenize_request(R"({"tokens": 1})", limits())));
}

}  // namespace
}  // namespace torchless::server
