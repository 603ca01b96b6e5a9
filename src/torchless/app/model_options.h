#pragma once
// The options every command that runs a model shares (-m or -hf, --tokenizer, --backend, --threads,
// --ctx, --kv-f16, -ngl, --tensor-parallel), declared once so that generate, chat, bench,
// perplexity and logits agree. session_options() checks them all before anything is loaded.
#include <string>

#include <CLI/CLI.hpp>

#include "torchless/engine/session.h"

namespace torchless::app {

struct ModelOptions {
  std::string model;
  std::string hf_repo;  // -hf ORG/NAME[:QUANT], instead of -m
  std::string tokenizer;
  std::string backend = "auto";
  int threads = 0;
  int ctx = 0;
  bool kv_f16 = false;                  // the older spelling of --kv-type f16
  std::string kv_type;                  // --kv-type / -ctk: f16, f32 or q8_0 ("": the default)
  std::string kv_type_v;                // -ctv: must agree with -ctk (one type for K and V)
  std::string default_kv_type = "f16";  // as in llama.cpp
  int gpu_layers = -1;      // llama.cpp's -ngl: 0 means the CPU; any other count, every layer
  int tensor_parallel = 1;  // -tp: ranks (GPUs, or CPU thread groups) to split the model over
};

struct ModelOptionSet {
  bool tokenizer = true;  // --tokenizer
  bool context = true;    // --ctx, --kv-type and --kv-f16
};

void add_model_options(CLI::App& app, ModelOptions& options, ModelOptionSet which = {});
// Validates the options (throws Error naming the flag) and resolves them: the backend name
// in lower case, -ngl 0 as the CPU, a thread count above the machine's capped with a warning.
SessionOptions session_options(const ModelOptions& options);

// The CPU threads to use for a --threads request: 0 stays 0 (the default), more than the
// machine's logical CPUs is capped to them with a warning on stderr.
int resolve_threads(int requested);

}  // namespace torchless::app
