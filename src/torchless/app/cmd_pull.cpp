// `torchless pull ORG/NAME[:QUANT] [--revision REV]`: downloads a model from the Hugging Face hub
// into the shared cache (or finds it there), and prints the path to load on stdout.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/app/output.h"
#include "torchless/hub/model_resolver.h"

namespace torchless::app {
namespace {

struct PullOptions {
  std::string repo;
  std::string revision = "main";
};

int run_pull(const PullOptions& options) {
  const hub::RepoSpec spec = hub::parse_repo_spec(options.repo, options.revision);
  const hub::ResolvedModel model =
      hub::resolve_hub_model(spec, hub::ResolveMode::Refresh, hub::hub_settings_from_env());
  write_stdout(model.path.string() + "\n");
  return 0;
}

const bool registered = register_command({
    "pull",
    "Download a model from the Hugging Face hub into its cache and print its path",
    [](CLI::App& sub) -> std::function<int()> {
      auto options = std::make_shared<PullOptions>();
      sub.add_option("repo", options->repo,
                     "ORG/NAME or ORG/NAME:QUANT (e.g. ggml-org/gemma-3-1b-it-GGUF:Q4_K_M)")
          ->required();
      sub.add_option("--revision", options->revision, "branch, tag or commit")
          ->capture_default_str();
      return [options] { return run_pull(*options); };
    },
});

}  // namespace
}  // namespace torchless::app
