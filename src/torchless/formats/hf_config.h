#pragma once
// Hugging Face config.json -> ModelConfig for model_type llama, mistral, qwen2, qwen3.
// Accepts both the transformers-4 layout (rope_theta / rope_scaling at top level) and the
// transformers-5 one (rope_parameters). Hugging Face checkpoints use the rotate-half RoPE
// layout, so rope_neox is always true here.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "torchless/formats/model_config.h"

namespace torchless {

// Parses config.json text; `label` names the source in errors. Throws Error for unknown
// model types, missing or out-of-range fields, unsupported rope scaling or per-layer windows.
ModelConfig parse_hf_config(std::string_view json_text, const std::string& label = "config.json");
ModelConfig read_hf_config(const std::filesystem::path& config_json);

}  // namespace torchless
