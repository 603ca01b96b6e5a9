// `torchless perplexity`: perplexity of a model on a text file, measured as llama.cpp's
// perplexity tool does: the tokens are cut into chunks of the context length, each chunk is
// evaluated from an empty sequence (BOS first when the vocabulary uses one), and only the
// predictions in the second half of each chunk are scored, so every scored token has at least
// half a context of history.
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/app/command.h"
#include "torchless/app/model_options.h"
#include "torchless/app/plural.h"
#include "torchless/core/error.h"
#include "torchless/engine/session.h"

namespace torchless::app {
namespace {

struct PerplexityOptions {
  ModelOptions model;
  std::string text_file;
  bool json = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read text file {}", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// -log p(target) from one row of logits, in double precision.
double negative_log_likelihood(std::span<const float> logits, int32_t target) {
  double max = logits[0];
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  return std::log(sum) + max - static_cast<double>(logits[static_cast<size_t>(target)]);
}

int run_perplexity(const PerplexityOptions& o) {
  Session session(session_options(o.model));
  const Tokenizer& tok = session.tokenizer();
  EncodeOptions encode;
  encode.add_bos = false;
  encode.add_eos = false;
  const std::vector<int32_t> tokens = tok.encode(read_file(o.text_file), encode);
  const bool bos = tok.add_bos() && tok.bos() >= 0;
  const int chunk = session.n_ctx() - (bos ? 1 : 0);
  if (chunk < 4) fail("the context ({}) is too small to measure perplexity", session.n_ctx());
  const int n_chunks = static_cast<int>(tokens.size()) / chunk;
  if (n_chunks == 0) {
    fail("the text has {}; at least one chunk of {} is needed (lower --ctx)",
         count_of(tokens.size(), "token"), chunk);
  }
  const int n_vocab = session.config().n_vocab;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> input;
    if (bos) input.push_back(tok.bos());
    input.insert(input.end(), tokens.begin() + int64_t{c} * chunk,
                 tokens.begin() + int64_t{c + 1} * chunk);
    session.reset();
    const std::span<const float> logits = session.append_all_logits(input);
    for (size_t i = input.size() / 2; i + 1 < input.size(); ++i) {
      const double v = negative_log_likelihood(
          logits.subspan(i * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab)),
          input[i + 1]);
      nll += v;
      nll2 += v * v;
      ++count;
    }
    if (!o.json)
      fmt::print(stderr, "[{}/{}] running perplexity {:.4f}\n", c + 1, n_chunks,
                 std::exp(nll / static_cast<double>(count)));
  }
  const double mean = nll / static_cast<double>(count);
  // Standard error of the mean NLL, carried to the perplexity by the delta method.
  const double variance = std::max(0.0, nll2 / static_cast<double>(count) - mean * mean);
  const double ppl = std::exp(mean);
  const double ppl_error =
      ppl * std::sqrt(variance / static_cast<double>(std::max<int64_t>(1, count - 1)));
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"perplexity", ppl},
                                      {"error", ppl_error},
                                      {"chunks", n_chunks},
                                      {"scored_tokens", count},
                                      {"n_ctx", session.n_ctx()}}
                           .dump());
  } else {
    fmt::print("perplexity: {:.4f} ± {:.4f} ({} of {}, {} scored)\n", ppl, ppl_error,
               count_of(static_cast<size_t>(n_chunks), "chunk"),
               count_of(static_cast<size_t>(chunk), "token"), count);
  }
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  add_model_options(app, o->model);
  app.add_option("-f,--file", o->text_file, "text file to measure")->required();
  app.add_flag("--json", o->json, "print one JSON object");
  return [o] { return run_perplexity(*o); };
}

const bool registered =
    register_command({"perplexity", "measure a model's perplexity on a text file", setup});

}  // namespace
}  // namespace torchless::app
