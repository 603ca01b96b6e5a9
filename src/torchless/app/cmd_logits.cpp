// `torchless logits`: the float32 logits [n_tokens x n_vocab] of one batched forward pass over
// the given ids, for comparing with other implementations. Needs no tokenizer.
#include <algorithm>
#include <charconv>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "torchless/app/command.h"
#include "torchless/app/model_options.h"
#include "torchless/core/error.h"
#include "torchless/engine/session.h"

namespace torchless::app {
namespace {

struct LogitsOptions {
  ModelOptions model;
  std::string tokens;
  std::string out;
};

std::vector<int32_t> parse_token_list(std::string_view text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int32_t id = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size()) {
      fail("--tokens: '{}' is not a token id (expected a list like 1,2,3)", item);
    }
    ids.push_back(id);
    start = end + 1;
  }
  return ids;
}

void write_binary(const std::string& path, std::span<const float> logits) {
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot open {} for writing", path);
  out.write(reinterpret_cast<const char*>(logits.data()),
            static_cast<std::streamsize>(logits.size_bytes()));
  if (!out) fail("failed writing {}", path);
}

void print_summary(std::span<const int32_t> ids, std::span<const float> logits, int n_vocab) {
  fmt::print("logits [{} x {}] (float32; --out FILE writes them row-major)\n", ids.size(), n_vocab);
  fmt::print("{:>5} {:>8} {:>8} {:>10}  first values\n", "row", "token", "argmax", "max");
  for (size_t row = 0; row < ids.size(); ++row) {
    const auto r = logits.subspan(row * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab));
    const auto best = std::max_element(r.begin(), r.end());
    fmt::print("{:>5} {:>8} {:>8} {:>10.4f}  {:.4f}\n", row, ids[row], best - r.begin(), *best,
               fmt::join(r.first(std::min<size_t>(5, r.size())), " "));
  }
}

int run_logits(const LogitsOptions& options) {
  const std::vector<int32_t> ids = parse_token_list(options.tokens);
  SessionOptions session_opts = session_options(options.model);
  session_opts.load_tokenizer = false;
  if (session_opts.n_ctx == 0) session_opts.n_ctx = static_cast<int>(ids.size());
  Session session(session_opts);
  const auto logits = session.append_all_logits(ids);
  if (!options.out.empty()) {
    write_binary(options.out, logits);
    fmt::print("wrote {} x {} float32 logits to {}\n", ids.size(), session.config().n_vocab,
               options.out);
  } else {
    print_summary(ids, logits, session.config().n_vocab);
  }
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto options = std::make_shared<LogitsOptions>();
  // Logits are compared with references at tight tolerances: keep the KV cache exact.
  options->model.default_kv_type = "f32";
  add_model_options(app, options->model, {.tokenizer = false, .context = true});
  app.add_option("--tokens", options->tokens, "comma-separated token ids, e.g. 1,2,3")->required();
  app.add_option("-o,--out", options->out, "write the raw float32 logits to this file");
  return [options] { return run_logits(*options); };
}

const bool registered = register_command(
    {"logits", "print or save the logits of one batched pass over token ids", setup});

}  // namespace
}  // namespace torchless::app
