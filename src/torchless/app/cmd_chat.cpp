// `torchless chat`: an interactive conversation using the model's chat template. Each turn the
// whole conversation is rendered again and only the tokens after the longest prefix already in
// the KV cache are evaluated, so history is never recomputed yet the prompt is always exactly
// what the template produces.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/app/model_options.h"
#include "torchless/app/sampling_options.h"
#include "torchless/core/error.h"
#include "torchless/engine/session.h"
#include "torchless/tokenizer/chat_template.h"

namespace torchless::app {
namespace {

struct ChatOptions {
  ModelOptions model;
  SamplingArgs sampling;
  std::string system;
  int max_reply_tokens = -1;
  bool show_template = false;
};

std::string special_text(const Tokenizer& tok, int32_t id) {
  return id >= 0 ? tok.token_to_piece(id, /*special=*/true) : std::string();
}

// The conversation as tokens: the template's text with special tokens parsed, BOS added when
// the vocabulary wants one and the template did not write it.
std::vector<int32_t> conversation_tokens(const Tokenizer& tok, const ChatTemplate& tmpl,
                                         const std::vector<ChatMessage>& messages) {
  const std::string bos = special_text(tok, tok.bos());
  const std::string text = tmpl.apply(messages, true, bos, special_text(tok, tok.eos()));
  EncodeOptions encode;
  encode.parse_special = true;
  encode.add_bos = tok.add_bos() && (bos.empty() || text.rfind(bos, 0) != 0);
  encode.add_eos = false;
  return tok.encode(text, encode);
}

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// Evaluates the new part of the conversation and streams the reply; returns its text.
std::string reply(Session& session, const std::vector<int32_t>& conversation,
                  const GenerationOptions& generation) {
  // Keep at least one token to re-evaluate so the session has fresh logits to sample from.
  const size_t keep =
      std::min(common_prefix(session.tokens(), conversation), conversation.size() - 1);
  session.truncate(static_cast<int>(keep));
  const std::span<const int32_t> fresh(conversation.data() + keep, conversation.size() - keep);
  const GenerationResult result =
      session.generate(fresh, generation, [](int32_t, std::string_view text) {
        fmt::print("{}", text);
        std::fflush(stdout);
        return true;
      });
  fmt::print("\n");
  if (result.stop == StopReason::ContextFull) {
    fmt::print(stderr, "[the context of {} tokens is full: /reset to start over]\n",
               session.n_ctx());
  }
  return result.text;
}

int run_chat(const ChatOptions& o) {
  Session session(session_options(o.model));
  const Tokenizer& tok = session.tokenizer();
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok);
  if (!tmpl.fallback_reason().empty()) fmt::print(stderr, "warning: {}\n", tmpl.fallback_reason());
  const bool interactive = isatty(STDIN_FILENO) != 0;
  if (interactive) {
    fmt::print(stderr, "chat format: {}; type /reset to start over, /exit or Ctrl-D to quit\n",
               chat_format_name(tmpl.format()));
  }
  GenerationOptions generation;
  generation.max_tokens = o.max_reply_tokens;
  generation.sampling = resolve_sampling(o.sampling);
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  const size_t n_system = messages.size();
  std::string line;
  while (true) {
    if (interactive) fmt::print("> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      messages.resize(n_system);
      session.reset();
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({"user", line});
    const std::vector<int32_t> conversation = conversation_tokens(tok, tmpl, messages);
    if (o.show_template) fmt::print(stderr, "[prompt: {} tokens]\n", conversation.size());
    if (static_cast<int>(conversation.size()) >= session.n_ctx()) {
      fail("the conversation ({} tokens) no longer fits the context of {} (use --ctx)",
           conversation.size(), session.n_ctx());
    }
    messages.push_back({"assistant", reply(session, conversation, generation)});
  }
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  add_model_options(app, o->model);
  add_sampling_options(app, o->sampling);
  app.add_option("--system", o->system, "system prompt");
  app.add_option("-n,--n-predict", o->max_reply_tokens,
                 "maximum tokens per reply (-1: until the end of turn)")
      ->capture_default_str();
  app.add_flag("--verbose-prompt", o->show_template, "print the prompt size of each turn");
  return [o] { return run_chat(*o); };
}

const bool registered =
    register_command({"chat", "chat interactively using the model's chat template", setup});

}  // namespace
}  // namespace torchless::app
