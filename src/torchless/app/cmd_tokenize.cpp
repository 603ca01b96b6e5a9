// `torchless tokenize -m MODEL (-p TEXT | -f FILE)`: the token ids and pieces of a text, as the
// model's tokenizer produces them (llama-tokenize's counterpart).
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/app/command.h"
#include "torchless/app/hub_model.h"
#include "torchless/app/plural.h"
#include "torchless/core/error.h"
#include "torchless/formats/model_loader.h"
#include "torchless/tokenizer/tokenizer.h"
#include "torchless/tokenizer/utf8.h"

namespace torchless::app {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string hf_repo;
  std::string tokenizer;
  std::string prompt;
  std::string file;
  bool no_bos = false;
  bool parse_special = false;
  bool json = false;
  bool has_text = false;  // -p or -f was given (-p "" is a valid, empty text)
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the text file", path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A piece in quotes, readable on a terminal: control characters and bytes that are not part
// of a valid UTF-8 character (pieces of byte tokens) are written as escapes.
std::string printable(std::string_view piece) {
  std::string out = "'";
  for (size_t pos = 0; pos < piece.size();) {
    const auto c = static_cast<unsigned char>(piece[pos]);
    const size_t n = utf8::valid_sequence_length(piece, pos);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (n == 0 || c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.append(piece.substr(pos, n));
      pos += n;
      continue;
    }
    ++pos;
  }
  return out + "'";
}

int run_tokenize(const TokenizeOptions& options) {
  if (!options.has_text) fail("no text to tokenize: give -p TEXT or -f FILE");
  const std::string text = options.file.empty() ? options.prompt : read_text_file(options.file);
  const auto tokenizer = load_tokenizer(
      load_model(model_path_or_hub(options.model, options.hf_repo)), options.tokenizer);
  EncodeOptions encode_options;
  encode_options.parse_special = options.parse_special;
  if (options.no_bos) encode_options.add_bos = encode_options.add_eos = false;
  const std::vector<int32_t> ids = tokenizer->encode(text, encode_options);

  if (options.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(std::string(tokenizer->token_text(id)));
    const nlohmann::json out = {{"ids", ids},
                                {"pieces", pieces},
                                {"n_tokens", ids.size()},
                                {"model_type", tokenizer->model_type()},
                                {"pre_type", tokenizer->pre_type()}};
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return 0;
  }
  for (int32_t id : ids) {
    fmt::print("{:>7} -> {}\n", id, printable(tokenizer->token_to_piece(id, true)));
  }
  fmt::print("{}\n", count_of(ids.size(), "token"));
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::Option* model =
      app.add_option("-m,--model", options->model,
                     "model: GGUF file, Hugging Face directory or llama2.c checkpoint");
  add_hf_option(app, options->hf_repo, model);
  app.add_option("--tokenizer", options->tokenizer,
                 "tokenizer file (llama2.c tokenizer.bin, or overrides the model's own)");
  auto* prompt = app.add_option("-p,--prompt", options->prompt, "text to tokenize");
  auto* file = app.add_option("-f,--file", options->file,
                              "file whose bytes are tokenized exactly as they are");
  prompt->excludes(file);
  app.add_flag("--no-bos", options->no_bos, "add no special tokens (no BOS, no EOS)");
  app.add_flag("--parse-special", options->parse_special,
               "turn special-token text such as <|eot_id|> into that token");
  app.add_flag("--json", options->json, "print {\"ids\": [...], \"pieces\": [...]} ");
  return [options, prompt, file] {
    options->has_text = prompt->count() > 0 || file->count() > 0;
    return run_tokenize(*options);
  };
}

const bool registered =
    register_command({"tokenize", "print the token ids and pieces of a text", setup});

}  // namespace
}  // namespace torchless::app
