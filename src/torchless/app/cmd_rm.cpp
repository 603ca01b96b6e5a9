// `torchless rm ORG/NAME[:QUANT]`: removes a cached model (or only its files of one
// quantisation) from the Hugging Face cache.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/app/output.h"
#include "torchless/hub/cache_admin.h"
#include "torchless/hub/file_selection.h"
#include "torchless/hub/hub_settings.h"

namespace torchless::app {
namespace {

int run_rm(const std::string& text) {
  const hub::RepoSpec spec = hub::parse_repo_spec(text);
  const uint64_t freed = hub::remove_cached(hub::hub_settings_from_env().cache_dir, spec);
  write_stdout(fmt::format("removed {} ({} freed)\n", spec.str(), hub::format_bytes(freed)));
  return 0;
}

const bool registered = register_command({
    "rm",
    "Remove a model (ORG/NAME, or ORG/NAME:QUANT for one quantisation) from the Hugging Face "
    "cache",
    [](CLI::App& sub) -> std::function<int()> {
      auto repo = std::make_shared<std::string>();
      sub.add_option("repo", *repo, "ORG/NAME or ORG/NAME:QUANT")->required();
      return [repo] { return run_rm(*repo); };
    },
});

}  // namespace
}  // namespace torchless::app
