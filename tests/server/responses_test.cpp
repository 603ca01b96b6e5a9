#include "torchless/server/responses.h"

#include <gtest/gtest.h>

#include "torchless/server/metrics.h"

namespace torchless::server {
namespace {

using nlohmann::json;

ResponseMeta chat_meta() {
  return {Endpoint::ChatCompletions, "chatcmpl-1", 1700000000, "m"};
}

TEST(Responses, ChatCompletionHasOpenAIsShape) {
  const json r = completion_json(chat_meta(), "hi", "stop", {3, 2}, std::nullopt);
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["id"], "chatcmpl-1");
  EXPECT_EQ(r["created"], 1700000000);
  EXPECT_EQ(r["model"], "m");
  ASSERT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["index"], 0);
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "hi");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(r["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(r["usage"],
            (json{{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}));
}

TEST(Responses, TextCompletionHasText) {
  const ResponseMeta meta{Endpoint::Completions, "cmpl-1", 1, "m"};
  const json r = completion_json(meta, "abc", "length", {1, 1}, std::nullopt);
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["text"], "abc");
  EXPECT_FALSE(r["choices"][0].contains("message"));
}

TEST(Responses, ChatChunksCarryTheRoleFirstThenContentThenTheFinishReason) {
  const json first = chunk_json(chat_meta(), "", true, "", std::nullopt, false);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));
  const json middle = chunk_json(chat_meta(), "x", false, "", std::nullopt, true);
  EXPECT_EQ(middle["choices"][0]["delta"], (json{{"content", "x"}}));
  EXPECT_TRUE(middle["usage"].is_null());
  const json last = chunk_json(chat_meta(), "", false, "length", std::nullopt, false);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  const json usage = usage_chunk_json(chat_meta(), {4, 5});
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 9);
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
}

TEST(Responses, LogprobsInBothShapes) {
  const std::vector<TokenLogprob> tokens = {{" a", -0.5f, {{" a", -0.5f}, {" b", -1.0f}}},
                                            {"\xc3", -2.0f, {}}};
  const json chat = logprobs_json(Endpoint::ChatCompletions, tokens);
  EXPECT_EQ(chat["content"][0]["token"], " a");
  EXPECT_EQ(chat["content"][0]["bytes"], (json{32, 97}));
  EXPECT_EQ(chat["content"][0]["top_logprobs"][1]["token"], " b");
  EXPECT_EQ(chat["content"][1]["bytes"], (json{0xc3}));
  EXPECT_TRUE(chat["refusal"].is_null());
  // A partial UTF-8 token still dumps as valid JSON text.
  EXPECT_EQ(json::parse(dump(chat))["content"][1]["token"], "\xef\xbf\xbd");

  const json legacy = logprobs_json(Endpoint::Completions, tokens, 10);
  EXPECT_EQ(legacy["tokens"][0], " a");
  EXPECT_FLOAT_EQ(legacy["token_logprobs"][1].get<float>(), -2.0f);
  EXPECT_FLOAT_EQ(legacy["top_logprobs"][0][" b"].get<float>(), -1.0f);
  EXPECT_EQ(legacy["text_offset"], (json{10, 12}));
}

TEST(Metrics, RendersPrometheusTextWithCumulativeHistograms) {
  Metrics m;
  m.count_response(200);
  m.count_response(200);
  m.count_response(503);
  m.observe_time_to_first_token(0.003);
  m.observe_time_to_first_token(0.2);
  m.observe_time_to_first_token(100);
  SchedulerStats s;
  s.slots = 4;
  s.running = 1;
  s.queued = 2;
  s.kv_blocks_used = 3;
  const std::string text = m.render(s);
  EXPECT_NE(text.find("torchless_http_responses_total{code=\"200\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("torchless_http_responses_total{code=\"503\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("torchless_time_to_first_token_seconds_bucket{le=\"0.005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("torchless_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("torchless_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("torchless_time_to_first_token_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("torchless_slots_busy 1\n"), std::string::npos);
  EXPECT_NE(text.find("torchless_queue_depth 2\n"), std::string::npos);
  EXPECT_NE(text.find("torchless_kv_blocks_used 3\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE torchless_time_per_output_token_seconds histogram\n"),
            std::string::npos);
}

}  // namespace
}  // namespace torchless::server
