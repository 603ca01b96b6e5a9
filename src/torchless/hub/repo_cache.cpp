#include "torchless/hub/repo_cache.h"

#include <fstream>
#include <regex>

#include <unistd.h>

#include <fmt/format.h>

#include "torchless/core/error.h"

namespace torchless::hub {
namespace {

namespace fs = std::filesystem;

bool is_commit_hash(const std::string& revision) {
  static const std::regex pattern("^[0-9a-f]{40}$");
  return std::regex_match(revision, pattern);
}

std::string temp_name(const fs::path& path) {
  return path.string() + fmt::format(".tmp{}", static_cast<long>(::getpid()));
}

}  // namespace

std::string repo_folder_name(const std::string& repo) {
  std::string folder = "models--" + repo;
  const size_t slash = folder.find('/');
  if (slash != std::string::npos) folder.replace(slash, 1, "--");
  return folder;
}

std::optional<std::string> repo_from_folder_name(const std::string& folder) {
  const std::string prefix = "models--";
  if (folder.rfind(prefix, 0) != 0) return std::nullopt;
  std::string repo = folder.substr(prefix.size());
  const size_t sep = repo.find("--");
  if (sep == std::string::npos) return repo;  // a repository without an organisation
  return repo.replace(sep, 2, "/");
}

void write_file_atomically(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  const fs::path tmp = temp_name(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) fail("cannot write {}", tmp.string());
  }
  fs::rename(tmp, path);
}

RepoCache::RepoCache(const fs::path& cache_dir, const std::string& repo)
    : dir_(cache_dir / repo_folder_name(repo)) {}

fs::path RepoCache::blob_path(const std::string& blob) const {
  return dir_ / "blobs" / blob;
}

fs::path RepoCache::snapshot_dir(const std::string& commit) const {
  return dir_ / "snapshots" / commit;
}

fs::path RepoCache::snapshot_file(const std::string& commit, const std::string& path) const {
  return snapshot_dir(commit) / fs::path(path);
}

std::optional<std::string> RepoCache::find_commit(const std::string& revision) const {
  std::ifstream in(dir_ / "refs" / fs::path(revision));
  std::string commit;
  if (in && std::getline(in, commit) && is_commit_hash(commit)) return commit;
  if (is_commit_hash(revision) && fs::is_directory(snapshot_dir(revision))) return revision;
  return std::nullopt;
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;  // a commit needs no ref
  write_file_atomically(dir_ / "refs" / fs::path(revision), commit);
}

std::vector<CachedFile> RepoCache::snapshot_files(const std::string& commit) const {
  std::vector<CachedFile> files;
  const fs::path root = snapshot_dir(commit);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return files;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code size_ec;
    if (!fs::is_regular_file(it->path(), size_ec)) continue;  // follows the link to its blob
    const uint64_t size = fs::file_size(it->path(), size_ec);
    if (size_ec) continue;
    files.push_back({it->path().lexically_relative(root).generic_string(), size});
  }
  return files;
}

bool RepoCache::has_file(const std::string& commit, const std::string& path) const {
  std::error_code ec;
  return fs::is_regular_file(snapshot_file(commit, path), ec);
}

void RepoCache::link(const std::string& commit, const std::string& path,
                     const std::string& blob) const {
  const fs::path file = snapshot_file(commit, path);
  fs::create_directories(file.parent_path());
  // Relative, as huggingface_hub makes them, so the cache can be moved as a whole.
  const fs::path target = fs::relative(blob_path(blob), file.parent_path());
  const fs::path tmp = temp_name(file);
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp);
  fs::rename(tmp, file);
}

}  // namespace torchless::hub
