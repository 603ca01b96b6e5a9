#include "torchless/app/model_options.h"

namespace torchless::app {

void add_model_options(CLI::App& app, ModelOptions& options, ModelOptionSet which) {
  app.add_option("-m,--model", options.model,
                 "model: a GGUF file, a Hugging Face directory, or a llama2.c checkpoint")
      ->required();
  if (which.tokenizer) {
    app.add_option("--tokenizer", options.tokenizer,
                   "tokenizer file (llama2.c tokenizer.bin, or overrides the model's own)");
  }
  app.add_option("--backend", options.backend, "auto, cpu, metal, cuda or metal-emulated")
      ->capture_default_str();
  app.add_option("-t,--threads", options.threads, "CPU threads (0: physical cores)")
      ->check(CLI::NonNegativeNumber);
  if (which.context) {
    app.add_option("-c,--ctx", options.ctx, "context length (0: the model's, at most 4096)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--kv-f16", options.kv_f16, "keep the KV cache in F16 instead of F32");
  }
}

SessionOptions session_options(const ModelOptions& options) {
  SessionOptions s;
  s.model_path = options.model;
  s.tokenizer_path = options.tokenizer;
  s.backend = options.backend;
  s.threads = options.threads;
  s.n_ctx = options.ctx;
  s.kv_f16 = options.kv_f16;
  return s;
}

}  // namespace torchless::app
