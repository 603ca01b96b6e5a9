// `torchless make-random-model`: writes a random-weight GGUF of a chosen family, shape and dtype
// (benchmarks, tests of shapes no shipped model has).
#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/core/error.h"
#include "torchless/formats/random_model_writer.h"

namespace torchless::app {
namespace {

struct Options {
  std::string out;
  std::string dtype = "f16";
  std::string preset = "1b";
  ModelConfig shape = llama_1b_like_config();
  uint64_t seed = 1;
};

int run(Options& o) {
  if (o.out.empty()) fail("--out FILE is required");
  const auto dtype = dtype_from_name(o.dtype);
  if (!dtype) fail("unknown dtype '{}' (try f32, f16, bf16, q8_0, q4_0)", o.dtype);
  RandomModelSpec spec;
  spec.config = o.shape;
  spec.weight_dtype = *dtype;
  spec.seed = o.seed;
  spec.config.name = fmt::format("random-{}-{}x{}-{}", spec.config.architecture, spec.config.n_embd,
                                 spec.config.n_layers, o.dtype);
  if (spec.config.head_dim == 0 && spec.config.n_heads > 0) {
    spec.config.head_dim = spec.config.n_embd / spec.config.n_heads;
  }
  write_random_model(spec, o.out);
  fmt::print("wrote {} ({}, {} weights, {} layers, embd {}, ffn {}, heads {}/{}, vocab {})\n",
             o.out, spec.config.architecture, o.dtype, spec.config.n_layers, spec.config.n_embd,
             spec.config.n_ff, spec.config.n_heads, spec.config.n_kv_heads, spec.config.n_vocab);
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("-o,--out", o->out, "output GGUF file")->required();
  app.add_option("--dtype", o->dtype, "weight dtype: f32, f16, bf16, q8_0, q4_0, ...")
      ->capture_default_str();
  ModelConfig& c = o->shape;
  app.add_option("--arch", c.architecture, "architecture: llama, mistral, qwen2, qwen3")
      ->capture_default_str();
  app.add_flag("--qkv-bias", c.qkv_bias, "q/k/v projection biases (Qwen2)");
  app.add_flag("--qk-norm", c.qk_norm, "RMSNorm of each q and k head before RoPE (Qwen3)");
  app.add_flag("--tied", c.tied_embeddings, "no output head: reuse the token embedding");
  app.add_option("--sliding-window", c.sliding_window, "attention window (0: full attention)")
      ->capture_default_str();
  app.add_option("--vocab", c.n_vocab, "vocabulary size")->capture_default_str();
  app.add_option("--embd", c.n_embd, "hidden size")->capture_default_str();
  app.add_option("--ff", c.n_ff, "feed-forward size")->capture_default_str();
  app.add_option("--layers", c.n_layers, "transformer blocks")->capture_default_str();
  app.add_option("--heads", c.n_heads, "attention heads")->capture_default_str();
  app.add_option("--kv-heads", c.n_kv_heads, "key/value heads")->capture_default_str();
  app.add_option("--head-dim", c.head_dim, "head dimension (0: embd / heads)")
      ->capture_default_str();
  app.add_option("--ctx", c.n_ctx_train, "context length stored in the file")
      ->capture_default_str();
  app.add_option("--seed", o->seed, "random seed")->capture_default_str();
  return [o] { return run(*o); };
}

const bool registered = register_command(
    {"make-random-model",
     "write a random-weight GGUF (default: a Llama-3.2-1B-like shape) for benchmarks and tests",
     setup});

}  // namespace
}  // namespace torchless::app
