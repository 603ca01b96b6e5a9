#pragma once
// From "org/name[:QUANT]" to a local path the model loader opens: the cached snapshot when it
// already holds the model (no request at all), else the hub's file list, the choice of files
// (file_selection.h) and their download into the cache (blob_download.h).
#include <filesystem>
#include <string>

#include "torchless/hub/hub_settings.h"
#include "torchless/hub/repo_spec.h"

namespace torchless::hub {

enum class ResolveMode {
  PreferCache,  // -hf: a cached model is used as it is
  Refresh,      // pull: ask the hub for the revision's current commit, download what is missing
};

struct ResolvedModel {
  std::filesystem::path path;  // the GGUF file (first part) or the safetensors directory
  std::string commit;
  bool from_cache = false;  // no request was made
};

// Prints the choice of files and download progress on stderr. Throws Error (offline with
// nothing cached, hub errors, checksum mismatches, no matching file).
ResolvedModel resolve_hub_model(const RepoSpec& spec, ResolveMode mode,
                                const HubSettings& settings);

}  // namespace torchless::hub
