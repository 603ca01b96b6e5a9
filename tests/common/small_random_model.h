#pragma once
// The small random-weight model of the paged-attention and batching tests (Transformer's
// forward_batch, the continuous-batching scheduler): Mistral-shaped, so with GQA and a sliding
// window, F16 weights (the F16 dot kernels), 300 tokens and 2 layers of width 64. Its heads are 2
// of 32 sharing one KV head by default, so that Q8_0 KV-cache blocks of 32 fit them.
#include <cstdint>
#include <filesystem>

#include "common/temp_dir.h"
#include "torchless/formats/random_model_writer.h"

namespace torchless::test {

inline RandomModelSpec small_random_model_spec(int sliding_window, uint64_t seed) {
  RandomModelSpec spec;
  spec.config.architecture = "mistral";
  spec.config.n_vocab = 300;
  spec.config.n_embd = 64;
  spec.config.n_ff = 96;
  spec.config.n_layers = 2;
  spec.config.n_heads = 2;
  spec.config.n_kv_heads = 1;
  spec.config.head_dim = 32;
  spec.config.n_ctx_train = 128;
  spec.config.sliding_window = sliding_window;
  spec.weight_dtype = DType::F16;
  spec.seed = seed;
  return spec;
}

// Writes `spec` as random.gguf in `dir` and returns its path.
inline std::filesystem::path write_random_model_in(const TempDir& dir,
                                                   const RandomModelSpec& spec) {
  const auto path = dir / "random.gguf";
  write_random_model(spec, path);
  return path;
}

}  // namespace torchless::test
