// `torchless list`: the models of the Hugging Face cache (shared with transformers, mlx-lm and
// llama.cpp), with their size on disk.
#include <string>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/app/output.h"
#include "torchless/hub/cache_admin.h"
#include "torchless/hub/file_selection.h"
#include "torchless/hub/hub_settings.h"

namespace torchless::app {
namespace {

int run_list() {
  const hub::HubSettings settings = hub::hub_settings_from_env();
  const std::vector<hub::CachedRepo> repos = hub::list_cached_repos(settings.cache_dir);
  if (repos.empty()) {
    fmt::print(stderr, "no models in the cache {}\n", settings.cache_dir.string());
    return 0;
  }
  std::string text;
  for (const hub::CachedRepo& r : repos) {
    std::string models;
    for (const std::string& m : r.models) models += (models.empty() ? "" : ", ") + m;
    text +=
        fmt::format("{:<48} {:>10}  {}{}\n", r.repo, hub::format_bytes(r.size),
                    models.empty() ? "-" : models, r.incomplete ? " (interrupted download)" : "");
  }
  write_stdout(text);
  return 0;
}

const bool registered = register_command({
    "list",
    "List the models in the Hugging Face cache with their sizes",
    [](CLI::App&) -> std::function<int()> { return run_list; },
});

}  // namespace
}  // namespace torchless::app
