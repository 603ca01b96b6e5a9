#pragma once
// A Hugging Face model directory: config.json plus model.safetensors or a sharded set listed by
// model.safetensors.index.json. Tensors are renamed to the canonical names of weight_store.h
// (model.layers.N.self_attn.q_proj.weight -> blk.N.attn_q.weight, ...); tensors the
// Transformer does not use (e.g. rotary_emb.inv_freq) are left out.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "torchless/formats/model_loader.h"

namespace torchless {

// The canonical name of a Hugging Face tensor name, or nullopt when the Transformer has no use
// for it.
std::optional<std::string> canonical_hf_tensor_name(std::string_view hf_name);

// `path` is the model directory, its config.json, or one of its .safetensors files.
LoadedModel load_safetensors_model(const std::filesystem::path& path);

}  // namespace torchless
