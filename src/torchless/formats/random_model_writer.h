#pragma once
// Writes GGUF files with random weights of a chosen shape and dtype, for benchmarks and for
// tests of shapes no shipped model has (e.g. a Llama-3.2-1B-like model in F16, Q8_0 or Q4_0).
// Every family the loader reads can be written: the config's architecture names it (llama,
// mistral, qwen2, qwen3) and its flags add the family's parts: q/k/v biases (qkv_bias), per-head
// q/k RMSNorm weights (qk_norm), a sliding window, a tied output head (tied_embeddings). The
// file's metadata says nothing about rope_neox: the loader derives it from the architecture. The
// vocabulary is a synthetic SentencePiece one (special tokens, the 256 byte tokens, filler pieces),
// so every command, tokenizer included, can load the file.
#include <cstdint>
#include <filesystem>

#include "torchless/core/dtype.h"
#include "torchless/formats/model_config.h"

namespace torchless {

struct RandomModelSpec {
  ModelConfig config;  // architecture (empty: llama), shapes, eps, theta, context, the flags above
  DType weight_dtype = DType::F16;  // 2-D weight matrices; norms stay F32
  uint64_t seed = 1;
};

// The shape of Llama 3.2 1B with a 32000-token vocabulary (the benchmark model of issue 3).
ModelConfig llama_1b_like_config();

// Throws Error for inconsistent shapes or a dtype that cannot be quantised to.
void write_random_model(const RandomModelSpec& spec, const std::filesystem::path& path);

}  // namespace torchless
