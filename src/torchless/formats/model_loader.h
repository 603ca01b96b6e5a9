#pragma once
// Loads a model from any supported source into one ModelConfig + one WeightStore with the
// canonical tensor names of weight_store.h:
//   - a GGUF file;
//   - a Hugging Face directory (config.json + model.safetensors or a sharded index);
//   - a llama2.c checkpoint (.bin).
// Throws Error naming the path and problem (unknown architecture, missing tensor, ...).
#include <filesystem>
#include <memory>
#include <string>

#include "torchless/formats/model_config.h"
#include "torchless/formats/weight_store.h"

namespace torchless {

class GgufFile;

enum class ModelFormat { Gguf, Safetensors, Llama2c };

struct LoadedModel {
  ModelFormat format = ModelFormat::Gguf;
  std::filesystem::path path;
  ModelConfig config;
  WeightStore weights;
  std::shared_ptr<GgufFile> gguf;  // set for GGUF files (tokenizer and metadata live there)
};

ModelFormat detect_model_format(const std::filesystem::path& path);
LoadedModel load_model(const std::filesystem::path& path);

}  // namespace torchless
