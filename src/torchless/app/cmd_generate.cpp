// `torchless generate`: prompt -> streamed text on stdout, statistics on stderr (or one JSON
// object with the token ids, the text and the timings).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/app/command.h"
#include "torchless/app/model_options.h"
#include "torchless/app/output.h"
#include "torchless/app/sampling_options.h"
#include "torchless/core/error.h"
#include "torchless/engine/session.h"

namespace torchless::app {
namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  SamplingArgs sampling;
  std::string output_format = "text";
  bool json = false;
  bool context_shift = true;
  bool conversation = false;
  bool ignore_eos = false;
  int n_probs = 0;
};

std::string read_prompt(const GenerateOptions& options) {
  if (!options.prompt.empty() && !options.prompt_file.empty()) {
    fail("give the prompt either with -p or with -f, not both");
  }
  if (options.prompt_file.empty()) return options.prompt;
  std::ostringstream text;
  if (options.prompt_file == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(options.prompt_file, std::ios::binary);
  if (!in) fail("cannot read prompt file {}", options.prompt_file);
  text << in.rdbuf();
  return text.str();
}

nlohmann::json timings_json(const Timings& t) {
  return {{"load_ms", t.load_ms},
          {"prompt_tokens", t.prompt_tokens},
          {"prompt_ms", t.prompt_ms},
          {"prompt_tokens_per_s", t.prompt_tokens_per_s()},
          {"generated_tokens", t.generated_tokens},
          {"generate_ms", t.generate_ms},
          {"generated_tokens_per_s", t.generated_tokens_per_s()}};
}

// Per generated token: the n most likely tokens with their probability and log-probability
// (OpenAI's logprobs, llama.cpp's n_probs).
nlohmann::json top_probs_json(const Session& session, const GenerationResult& result) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& step : result.top_probs) {
    nlohmann::json entries = nlohmann::json::array();
    for (const TokenProbability& t : step) {
      const std::string piece =
          session.has_tokenizer() ? session.tokenizer().token_to_piece(t.id, true) : "";
      entries.push_back({{"id", t.id},
                         {"token", piece},
                         {"p", t.p},
                         {"logprob", std::log(static_cast<double>(t.p))}});
    }
    steps.push_back(entries);
  }
  return steps;
}

void print_stats(const Session& session, const GenerationResult& result, uint64_t seed) {
  const Timings& t = result.timings;
  fmt::print(stderr, "\nbackend {}, context {}, seed {}\n", session.backend().name(),
             session.n_ctx(), seed);
  fmt::print(stderr, "load:       {:10.2f} ms\n", t.load_ms);
  const auto tokens = [](int n) {
    return fmt::format("{:6d} {}", n, n == 1 ? "token " : "tokens");
  };
  fmt::print(stderr, "prompt:     {:10.2f} ms  {}  {:10.2f} tokens/s\n", t.prompt_ms,
             tokens(t.prompt_tokens), t.prompt_tokens_per_s());
  fmt::print(stderr, "generation: {:10.2f} ms  {}  {:10.2f} tokens/s\n", t.generate_ms,
             tokens(t.generated_tokens), t.generated_tokens_per_s());
  if (result.stop == StopReason::ContextFull) {
    fmt::print(stderr, "stopped: the context of {} tokens is full (use --ctx to enlarge it)\n",
               session.n_ctx());
  }
}

int run_generate(const GenerateOptions& options) {
  if (options.conversation) {
    fail("-cnv: conversation mode is its own command, torchless chat (see torchless chat --help)");
  }
  if (options.output_format != "text" && options.output_format != "json") {
    fail("--output-format must be text or json, got {}", options.output_format);
  }
  check_sampling(options.sampling);
  check_n_predict(options.n_predict);
  if (options.n_probs < 0 || options.n_probs > 100) {
    fail("--n-probs must be between 0 (off) and 100, got {}", options.n_probs);
  }
  const std::string prompt = read_prompt(options);
  if (prompt.empty()) fail("the prompt is empty (give one with -p TEXT or -f FILE)");
  const bool json = options.json || options.output_format == "json";

  Session session(session_options(options.model));
  GenerationOptions generation;
  generation.max_tokens = options.n_predict;
  generation.stop_at_end_of_generation = !options.ignore_eos;
  generation.n_probs = options.n_probs;
  generation.sampling = resolve_sampling(options.sampling, session.tokenizer());
  const std::vector<int32_t> prompt_tokens = session.tokenize(prompt);
  // A context shift keeps the prompt's first token (BOS) and whatever fits of the rest.
  if (options.context_shift) generation.context_keep = std::min<int>(prompt_tokens.size(), 1);

  if (!json) write_stdout(prompt);
  std::string text;
  const auto& stops = options.sampling.reverse_prompts;
  const TokenCallback stream = [&](int32_t, std::string_view piece) {
    if (!json) write_stdout(piece);
    if (stops.empty()) return true;
    text += piece;
    return find_reverse_prompt(stops, text) == std::string::npos;
  };
  const GenerationResult result = session.generate(prompt_tokens, generation, stream);
  if (!json) write_stdout("\n");
  if (json) {
    nlohmann::json out = {{"prompt_tokens", result.prompt_tokens},
                          {"tokens", result.tokens},
                          {"text", result.text},
                          {"stop", stop_reason_name(result.stop)},
                          {"timings", timings_json(result.timings)}};
    if (options.n_probs > 0) out["top_probs"] = top_probs_json(session, result);
    write_stdout(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  print_stats(session, result, generation.sampling.seed);
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  add_model_options(app, options->model);
  app.add_option("-p,--prompt", options->prompt, "prompt text");
  app.add_option("-f,--file", options->prompt_file, "read the prompt from a file (-: stdin)");
  app.add_option("-n,--n-predict", options->n_predict,
                 "tokens to generate (-1: until the end of text)")
      ->capture_default_str();
  add_sampling_options(app, options->sampling);
  app.add_flag("--json", options->json, "print one JSON object (same as --output-format json)");
  app.add_option("--output-format", options->output_format, "text or json")->capture_default_str();
  app.add_flag("--context-shift,!--no-context-shift", options->context_shift,
               "when the context fills, drop the oldest half of the text and go on (default)");
  app.add_flag("--ignore-eos", options->ignore_eos, "go on past the end-of-text token");
  app.add_option("--n-probs", options->n_probs,
                 "with --json: the N most likely tokens at each step (top_probs)");
  app.add_flag("--conversation", options->conversation, "llama.cpp's -cnv: use torchless chat");
  return [options] { return run_generate(*options); };
}

const bool registered = register_command({"generate", "generate text from a prompt", setup});

}  // namespace
}  // namespace torchless::app
