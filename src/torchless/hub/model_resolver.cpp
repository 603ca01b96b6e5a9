#include "torchless/hub/model_resolver.h"

#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "torchless/core/error.h"
#include "torchless/hub/blob_download.h"
#include "torchless/hub/file_selection.h"
#include "torchless/hub/hub_api.h"
#include "torchless/hub/repo_cache.h"

namespace torchless::hub {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

fs::path model_path(const RepoCache& cache, const std::string& commit, const FileSelection& s) {
  return s.model_path.empty() ? cache.snapshot_dir(commit)
                              : cache.snapshot_file(commit, s.model_path);
}

std::optional<ResolvedModel> find_in_cache(const RepoCache& cache, const RepoSpec& spec) {
  const std::optional<std::string> commit = cache.find_commit(spec.revision);
  if (!commit) return std::nullopt;
  std::vector<RepoFileEntry> entries;
  for (const CachedFile& f : cache.snapshot_files(*commit)) entries.push_back({f.path, f.size});
  FileSelection selection;
  try {
    selection = select_model_files(entries, spec.quant, spec.repo);
    if (selection.safetensors_index) {
      const fs::path index = cache.snapshot_file(*commit, "model.safetensors.index.json");
      for (const std::string& shard : safetensors_shards(read_text(index))) {
        if (!cache.has_file(*commit, shard)) return std::nullopt;
      }
    }
  } catch (const Error&) {
    return std::nullopt;  // not (completely) there: the hub decides
  }
  return ResolvedModel{model_path(cache, *commit, selection), *commit, true};
}

class Fetcher {
 public:
  Fetcher(const HubSettings& settings, const RepoCache& cache, const RepoSpec& spec,
          const RepoInfo& info, HttpClient& http)
      : settings_(settings), cache_(cache), spec_(spec), info_(info), http_(http) {}

  void ensure(const std::string& path) {
    if (cache_.has_file(info_.commit, path)) return;
    const RemoteFile* file = info_.find(path);
    if (!file) fail("{} lists no file '{}' at commit {}", spec_.repo, path, info_.commit);
    download_to_cache(http_, settings_, cache_, spec_.repo, info_.commit, *file);
  }

 private:
  const HubSettings& settings_;
  const RepoCache& cache_;
  const RepoSpec& spec_;
  const RepoInfo& info_;
  HttpClient& http_;
};

ResolvedModel download(const RepoSpec& spec, const HubSettings& settings, const RepoCache& cache) {
  HttpClient http(settings.token);
  const RepoInfo info = fetch_repo_info(http, settings, spec);
  const FileSelection selection = select_model_files(info.entries(), spec.quant, spec.repo);
  fmt::print(stderr, "{}: {}\n", spec.str(), selection.description);
  Fetcher fetcher(settings, cache, spec, info, http);
  for (const std::string& path : selection.files) fetcher.ensure(path);
  if (selection.safetensors_index) {
    const fs::path index = cache.snapshot_file(info.commit, "model.safetensors.index.json");
    for (const std::string& shard : safetensors_shards(read_text(index))) fetcher.ensure(shard);
  }
  cache.write_ref(spec.revision, info.commit);
  return {model_path(cache, info.commit, selection), info.commit, false};
}

}  // namespace

ResolvedModel resolve_hub_model(const RepoSpec& spec, ResolveMode mode,
                                const HubSettings& settings) {
  const RepoCache cache(settings.cache_dir, spec.repo);
  if (mode == ResolveMode::PreferCache || settings.offline) {
    if (std::optional<ResolvedModel> cached = find_in_cache(cache, spec)) return *cached;
    if (settings.offline) {
      fail(
          "HF_HUB_OFFLINE=1 and {} (revision {}) is not in the cache {}: download it first "
          "with `torchless pull {}` where the hub can be reached",
          spec.str(), spec.revision, settings.cache_dir.string(), spec.str());
    }
  }
  return download(spec, settings, cache);
}

}  // namespace torchless::hub
