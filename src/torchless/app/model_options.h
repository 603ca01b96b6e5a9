#pragma once
// The options every command that runs a model shares (-m, --tokenizer, --backend, --threads,
// --ctx, --kv-f16), declared once so that generate, chat, bench, perplexity and logits agree.
#include <string>

#include <CLI/CLI.hpp>

#include "torchless/engine/session.h"

namespace torchless::app {

struct ModelOptions {
  std::string model;
  std::string tokenizer;
  std::string backend = "auto";
  int threads = 0;
  int ctx = 0;
  bool kv_f16 = false;
};

struct ModelOptionSet {
  bool tokenizer = true;  // --tokenizer
  bool context = true;    // --ctx and --kv-f16
};

void add_model_options(CLI::App& app, ModelOptions& options, ModelOptionSet which = {});
SessionOptions session_options(const ModelOptions& options);

}  // namespace torchless::app
