#pragma once
// GGUF metadata -> ModelConfig for general.architecture llama, mistral, qwen2, qwen3, and the
// file's tensors as the WeightStore (GGUF names are the canonical names).
//
// RoPE layout: llama.cpp's converter permutes the rows of attn_q / attn_k of the llama (and
// mistral) arch per head so that adjacent pairs (2i, 2i+1) are rotated together: rope_neox =
// false. qwen2 / qwen3 keep Hugging Face's row order and rotate (i, i + head_dim/2): true.
#include <filesystem>

#include "torchless/formats/model_loader.h"

namespace torchless {

class GgufFile;

ModelConfig gguf_model_config(const GgufFile& gguf);
LoadedModel load_gguf_model(const std::filesystem::path& path);

}  // namespace torchless
