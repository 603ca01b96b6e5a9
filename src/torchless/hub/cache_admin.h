#pragma once
// What `torchless list` and `torchless rm` see of the Hugging Face cache: every repository,
// its size on disk, and the models its snapshots hold.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "torchless/hub/repo_spec.h"

namespace torchless::hub {

struct CachedRepo {
  std::string repo;
  uint64_t size = 0;                // every blob, downloads in progress included
  std::vector<std::string> models;  // GGUF files (first parts), or "safetensors"
  bool incomplete = false;          // a download was interrupted (blobs/*.incomplete)
};

std::vector<CachedRepo> list_cached_repos(const std::filesystem::path& cache_dir);

// Removes the repository, or with a quantisation only its GGUF files of that quantisation (and
// the blobs no other snapshot file uses). Returns the bytes freed; throws Error when nothing
// matches.
uint64_t remove_cached(const std::filesystem::path& cache_dir, const RepoSpec& spec);

}  // namespace torchless::hub
