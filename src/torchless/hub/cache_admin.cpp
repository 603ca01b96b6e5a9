#include "torchless/hub/cache_admin.h"

#include <algorithm>
#include <set>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_split.h"
#include "torchless/hub/file_selection.h"
#include "torchless/hub/repo_cache.h"

namespace torchless::hub {
namespace {

namespace fs = std::filesystem;

uint64_t dir_size(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}

// Every snapshot file (a link), with the blob it points to.
std::vector<std::pair<fs::path, fs::path>> snapshot_links(const fs::path& repo_dir) {
  std::vector<std::pair<fs::path, fs::path>> links;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(repo_dir / "snapshots", ec);
       !ec && it != fs::end(it); it.increment(ec)) {
    std::error_code link_ec;
    if (!it->is_symlink(link_ec)) continue;
    const fs::path target = fs::weakly_canonical(
        it->path().parent_path() / fs::read_symlink(it->path(), link_ec), link_ec);
    links.emplace_back(it->path(), target);
  }
  return links;
}

std::vector<std::string> models_of(const fs::path& repo_dir) {
  std::set<std::string> models;
  for (const auto& [link, blob] : snapshot_links(repo_dir)) {
    const std::string name = link.filename().string();
    if (name == "config.json") models.insert("safetensors");
    if (name.size() < 5 || name.substr(name.size() - 5) != ".gguf") continue;
    const auto split = parse_gguf_split_name(name);
    if (!split || split->number == 1) models.insert(name);
  }
  return {models.begin(), models.end()};
}

bool has_incomplete(const fs::path& repo_dir) {
  std::error_code ec;
  for (auto it = fs::directory_iterator(repo_dir / "blobs", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->path().extension() == ".incomplete") return true;
  }
  return false;
}

}  // namespace

std::vector<CachedRepo> list_cached_repos(const fs::path& cache_dir) {
  std::vector<CachedRepo> repos;
  std::error_code ec;
  for (auto it = fs::directory_iterator(cache_dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto repo = repo_from_folder_name(it->path().filename().string());
    if (!repo || !it->is_directory()) continue;
    repos.push_back(
        {*repo, dir_size(it->path() / "blobs"), models_of(it->path()), has_incomplete(it->path())});
  }
  std::sort(repos.begin(), repos.end(),
            [](const CachedRepo& a, const CachedRepo& b) { return a.repo < b.repo; });
  return repos;
}

uint64_t remove_cached(const fs::path& cache_dir, const RepoSpec& spec) {
  const fs::path repo_dir = cache_dir / repo_folder_name(spec.repo);
  if (!fs::is_directory(repo_dir)) fail("{} is not in the cache {}", spec.repo, cache_dir.string());
  const uint64_t before = dir_size(repo_dir / "blobs");
  if (spec.quant.empty()) {
    fs::remove_all(repo_dir);
    return before;
  }
  std::set<fs::path> released;
  std::set<fs::path> kept;
  for (const auto& [link, blob] : snapshot_links(repo_dir)) {
    if (names_quant(link.filename().string(), spec.quant)) {
      fs::remove(link);
      released.insert(blob);
    } else {
      kept.insert(blob);
    }
  }
  if (released.empty()) fail("the cache holds no {} file of {}", spec.quant, spec.repo);
  for (const fs::path& blob : released) {
    if (!kept.count(blob)) fs::remove(blob);
  }
  return before - dir_size(repo_dir / "blobs");
}

}  // namespace torchless::hub
