// `torchless chat`: an interactive conversation using the model's chat template. Each turn the
// whole conversation is rendered again and only the tokens after the longest prefix already in
// the KV cache are evaluated, so history is never recomputed yet the prompt is always exactly
// what the template produces. When the context fills, the oldest turns are dropped (the
// system prompt stays); Ctrl-C stops a reply, and a second Ctrl-C at an empty prompt quits.
#include <signal.h>  // NOLINT(modernize-deprecated-headers): sigaction is POSIX, not <csignal>

#include <atomic>
#include <cstdio>
#include <optional>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/app/line_reader.h"
#include "torchless/app/model_options.h"
#include "torchless/app/output.h"
#include "torchless/app/plural.h"
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
  bool conversation = true;  // llama.cpp's -cnv; a chat always is one
  bool ignore_eos = false;
};

std::atomic<int> g_interrupts{0};

void on_interrupt(int) {
  g_interrupts.fetch_add(1);
}

// At the prompt, SIGINT without SA_RESTART so that a Ctrl-C interrupts the blocking read;
// during a reply with it, so that a write to stdout is never cut short by one.
void install_interrupt_handler(bool restart) {
  struct sigaction action = {};
  action.sa_handler = on_interrupt;
  action.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

constexpr std::string_view kHelp =
    "/help: this text; /reset: forget the conversation (the system prompt stays); /exit or "
    "Ctrl-D: quit. End a line with \\ to continue it on the next. Ctrl-C stops a reply; "
    "Ctrl-C twice at the prompt quits.";
constexpr std::string_view kEditingHelp =
    "Up and down arrows recall earlier lines (kept in the chat history file); Ctrl-A and "
    "Ctrl-E go to the start and end of the line.";

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
                  const GenerationOptions& generation, const SamplingArgs& sampling) {
  // Keep at least one token to re-evaluate so the session has fresh logits to sample from.
  const size_t keep =
      std::min(common_prefix(session.tokens(), conversation), conversation.size() - 1);
  session.truncate(static_cast<int>(keep));
  const std::span<const int32_t> fresh(conversation.data() + keep, conversation.size() - keep);
  std::string text;
  install_interrupt_handler(true);
  const GenerationResult result =
      session.generate(fresh, generation, [&](int32_t, std::string_view piece) {
        write_stdout(piece);
        if (g_interrupts.load() > 0) return false;
        if (sampling.reverse_prompts.empty()) return true;
        text += piece;
        return find_reverse_prompt(sampling.reverse_prompts, text) == std::string::npos;
      });
  write_stdout("\n");
  // A Ctrl-C that came as the reply ended anyway must not stop the next one.
  if (g_interrupts.exchange(0) > 0 && result.stop == StopReason::Callback) {
    fmt::print(stderr, "[reply stopped]\n");
  }
  return result.text;
}

// The tokens of the system messages alone: what a context shift keeps.
int system_prefix(const Tokenizer& tok, const ChatTemplate& tmpl,
                  const std::vector<ChatMessage>& messages, size_t n_system,
                  const std::vector<int32_t>& conversation) {
  if (n_system == 0) return std::min<int>(static_cast<int>(conversation.size()), 1);
  const std::vector<ChatMessage> system(messages.begin(),
                                        messages.begin() + static_cast<long>(n_system));
  return static_cast<int>(common_prefix(conversation_tokens(tok, tmpl, system), conversation));
}

// Drops the oldest turns until the conversation leaves room for a reply; std::nullopt when
// even the newest message alone does not fit (the caller tells the user and drops it).
std::optional<std::vector<int32_t>> fit_conversation(const Tokenizer& tok, const ChatTemplate& tmpl,
                                                     std::vector<ChatMessage>& messages,
                                                     size_t n_system, int n_ctx) {
  const size_t room = static_cast<size_t>(n_ctx - n_ctx / 4);  // a quarter for the reply
  while (true) {
    std::vector<int32_t> tokens = conversation_tokens(tok, tmpl, messages);
    if (tokens.size() <= room) return tokens;
    if (messages.size() <= n_system + 1) return std::nullopt;
    // The oldest user turn and the assistant reply after it.
    const auto first = messages.begin() + static_cast<long>(n_system);
    messages.erase(first, first + std::min<long>(2, static_cast<long>(messages.size()) -
                                                        static_cast<long>(n_system) - 1));
    fmt::print(stderr, "[context full: dropped the oldest turn]\n");
  }
}

int run_chat(const ChatOptions& o) {
  check_sampling(o.sampling);
  check_n_predict(o.max_reply_tokens);
  Session session(session_options(o.model));
  const Tokenizer& tok = session.tokenizer();
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok);
  if (!tmpl.fallback_reason().empty()) fmt::print(stderr, "warning: {}\n", tmpl.fallback_reason());
  LineReader reader("torchless", g_interrupts);
  const bool interactive = reader.interactive();
  fmt::print(stderr, "chat format: {}\n", chat_format_name(tmpl.format()));
  const auto print_help = [&] {
    fmt::print(stderr, "{}\n", kHelp);
    if (reader.editing()) fmt::print(stderr, "{}\n", kEditingHelp);
  };
  if (interactive) print_help();
  GenerationOptions generation;
  generation.max_tokens = o.max_reply_tokens;
  generation.stop_at_end_of_generation = !o.ignore_eos;
  generation.sampling = resolve_sampling(o.sampling, session.tokenizer());
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  const size_t n_system = messages.size();
  std::string line;
  bool interrupted_at_prompt = false;
  while (true) {
    install_interrupt_handler(false);
    const ReadResult read = reader.read(line, "> ");
    if (read == ReadResult::Interrupted) {
      g_interrupts.store(0);
      if (interrupted_at_prompt) break;
      interrupted_at_prompt = true;
      fmt::print(stderr, "\n[Ctrl-C again to quit, or type /exit]\n");
      continue;
    }
    interrupted_at_prompt = false;
    if (read == ReadResult::EndOfInput || line == "/exit") break;
    if (line == "/help") {
      print_help();
      continue;
    }
    if (line == "/reset") {
      messages.resize(n_system);
      session.reset();
      fmt::print(stderr, "[conversation reset]\n");
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({"user", line});
    const auto conversation = fit_conversation(tok, tmpl, messages, n_system, session.n_ctx());
    if (!conversation) {
      messages.pop_back();
      fmt::print(stderr,
                 "[this message does not fit the context of {} tokens: send a shorter one, "
                 "or restart with a larger --ctx]\n",
                 session.n_ctx());
      continue;
    }
    if (o.show_template)
      fmt::print(stderr, "[prompt: {}]\n", count_of(conversation->size(), "token"));
    generation.context_keep = system_prefix(tok, tmpl, messages, n_system, *conversation);
    messages.push_back({"assistant", reply(session, *conversation, generation, o.sampling)});
  }
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  add_model_options(app, o->model);
  add_sampling_options(app, o->sampling);
  app.add_option("--system,--system-prompt", o->system, "system prompt (llama.cpp: -sys)");
  app.add_flag("--conversation", o->conversation, "llama.cpp's -cnv (a chat always is one)");
  app.add_option("-n,--n-predict", o->max_reply_tokens,
                 "maximum tokens per reply (-1: until the end of turn)")
      ->capture_default_str();
  app.add_flag("--ignore-eos", o->ignore_eos, "go on past the end-of-turn token (with -n)");
  app.add_flag("--verbose-prompt", o->show_template, "print the prompt size of each turn");
  return [o] { return run_chat(*o); };
}

const bool registered =
    register_command({"chat", "chat interactively using the model's chat template", setup});

}  // namespace
}  // namespace torchless::app
