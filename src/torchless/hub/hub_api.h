#pragma once
// The hub's HTTP interface, as huggingface_hub uses it:
//   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true
//       -> {"id", "sha": COMMIT, "siblings": [{"rfilename", "size", "blobId",
//                                              "lfs": {"sha256", "size", "pointerSize"}}]}
//   GET {endpoint}/{repo}/resolve/{commit}/{path}
//       -> the file (large files: a redirect to a CDN; headers X-Repo-Commit, ETag and, for LFS
//          files, X-Linked-Etag / X-Linked-Size)
// and its answers turned into messages a user can act on (401/403: gated or private, 404: no
// such repository or file, 5xx: try later).
#include <cstdint>
#include <string>
#include <vector>

#include "torchless/hub/file_selection.h"
#include "torchless/hub/http_client.h"
#include "torchless/hub/hub_settings.h"
#include "torchless/hub/repo_spec.h"

namespace torchless::hub {

struct RemoteFile {
  std::string path;
  uint64_t size = 0;
  std::string blob_id;  // the git blob id (the cache's blob name for small files)
  std::string sha256;   // LFS files: the content hash (and the cache's blob name)
  std::string blob_name() const { return sha256.empty() ? blob_id : sha256; }
};

struct RepoInfo {
  std::string commit;
  std::vector<RemoteFile> files;
  std::vector<RepoFileEntry> entries() const;
  const RemoteFile* find(const std::string& path) const;
};

RepoInfo fetch_repo_info(HttpClient& http, const HubSettings& settings, const RepoSpec& spec);
std::string resolve_url(const HubSettings& settings, const std::string& repo,
                        const std::string& commit, const std::string& path);

// Throws Error for a status other than 200/206: what to do about it, with `what` (the
// repository or file) and the URL.
void check_status(const HttpResponse& response, const HubSettings& settings,
                  const std::string& repo, const std::string& what, const std::string& url);

}  // namespace torchless::hub
