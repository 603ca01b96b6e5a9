#include "torchless/app/hub_model.h"

#include "torchless/core/error.h"
#include "torchless/hub/model_resolver.h"

namespace torchless::app {

void add_hf_option(CLI::App& app, std::string& hf_repo, CLI::Option* model_option) {
  CLI::Option* hf = app.add_option(
      "--hf-repo,--hf", hf_repo,
      "llama.cpp's -hf: a Hugging Face model ORG/NAME[:QUANT], from the cache or downloaded "
      "into it (see torchless pull)");
  hf->excludes(model_option);
}

std::string model_path_or_hub(const std::string& model, const std::string& hf_repo) {
  if (hf_repo.empty()) {
    if (model.empty()) fail("no model: give -m FILE or -hf ORG/NAME[:QUANT]");
    return model;
  }
  const hub::RepoSpec spec = hub::parse_repo_spec(hf_repo);
  return hub::resolve_hub_model(spec, hub::ResolveMode::PreferCache, hub::hub_settings_from_env())
      .path.string();
}

}  // namespace torchless::app
