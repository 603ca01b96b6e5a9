#pragma once
// One file of a repository into the cache, the way nothing half-done is ever taken for a model:
// the bytes go to blobs/BLOB.incomplete (resumed with a Range request when a previous attempt
// left one, retried a few times when the connection drops), are checked (the size, and the
// SHA-256 the hub reports for LFS files; a mismatch deletes them), then renamed to blobs/BLOB
// and linked from snapshots/COMMIT/PATH.
#include <string>

#include "torchless/hub/hub_api.h"
#include "torchless/hub/repo_cache.h"

namespace torchless::hub {

void download_to_cache(HttpClient& http, const HubSettings& settings, const RepoCache& cache,
                       const std::string& repo, const std::string& commit, const RemoteFile& file);

}  // namespace torchless::hub
