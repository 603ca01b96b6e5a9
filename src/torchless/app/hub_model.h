#pragma once
// -hf ORG/NAME[:QUANT] beside -m PATH on every command that opens a model: the hub model is
// taken from the Hugging Face cache, or downloaded into it first (see hub/model_resolver.h).
#include <string>

#include <CLI/CLI.hpp>

namespace torchless::app {

// Declares -hf (llama.cpp's spelling; --hf-repo) next to the command's -m option, which it
// excludes; neither is required by CLI11: model_path_or_hub() asks for one of them.
void add_hf_option(CLI::App& app, std::string& hf_repo, CLI::Option* model_option);

// The path to load: `model`, or the cached (downloaded if needed) hub model. Throws Error when
// both are empty.
std::string model_path_or_hub(const std::string& model, const std::string& hf_repo);

}  // namespace torchless::app
