#pragma once
// One repository in the standard Hugging Face cache layout (shared with huggingface_hub,
// transformers, mlx-lm and llama.cpp):
//   CACHE/models--ORG--NAME/blobs/BLOB            file contents, named by their git blob id or
//                                                 (for LFS files) their SHA-256
//   CACHE/models--ORG--NAME/blobs/BLOB.incomplete a download in progress (resumed from there)
//   CACHE/models--ORG--NAME/refs/REVISION         the commit hash a branch or tag pointed to
//   CACHE/models--ORG--NAME/snapshots/COMMIT/PATH a relative symlink to ../../blobs/BLOB
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace torchless::hub {

// "org/name" -> "models--org--name", and back (nullopt for other folder names).
std::string repo_folder_name(const std::string& repo);
std::optional<std::string> repo_from_folder_name(const std::string& folder);

struct CachedFile {
  std::string path;  // inside the repository, '/'-separated
  uint64_t size = 0;
};

class RepoCache {
 public:
  RepoCache(const std::filesystem::path& cache_dir, const std::string& repo);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path blob_path(const std::string& blob) const;
  std::filesystem::path snapshot_dir(const std::string& commit) const;
  std::filesystem::path snapshot_file(const std::string& commit, const std::string& path) const;

  // The commit of `revision`: a ref written by an earlier download, or the revision itself when
  // it is a commit hash with a snapshot.
  std::optional<std::string> find_commit(const std::string& revision) const;
  void write_ref(const std::string& revision, const std::string& commit) const;  // atomic
  // Files of a snapshot whose links resolve to a blob (broken links are left out).
  std::vector<CachedFile> snapshot_files(const std::string& commit) const;
  bool has_file(const std::string& commit, const std::string& path) const;
  // Points snapshots/COMMIT/PATH at the blob (atomically replacing any older link).
  void link(const std::string& commit, const std::string& path, const std::string& blob) const;

 private:
  std::filesystem::path dir_;
};

// Writes `text` to `path` through a temporary file and a rename, so readers never see half of it.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace torchless::hub
