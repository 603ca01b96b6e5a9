#include "torchless/hub/hub_api.h"

#include <nlohmann/json.hpp>

#include "torchless/core/error.h"

namespace torchless::hub {
namespace {

RemoteFile parse_sibling(const nlohmann::json& s) {
  RemoteFile f;
  f.path = s.at("rfilename").get<std::string>();
  f.size = s.value("size", uint64_t{0});
  f.blob_id = s.value("blobId", std::string());
  if (const auto lfs = s.find("lfs"); lfs != s.end() && lfs->is_object()) {
    f.sha256 = lfs->value("sha256", std::string());
    f.size = lfs->value("size", f.size);
  }
  if (f.path.empty() || f.path[0] == '/' || f.path.find("..") != std::string::npos) {
    fail("the hub lists a file '{}' outside the repository", f.path);
  }
  return f;
}

}  // namespace

std::vector<RepoFileEntry> RepoInfo::entries() const {
  std::vector<RepoFileEntry> out;
  for (const RemoteFile& f : files) out.push_back({f.path, f.size});
  return out;
}

const RemoteFile* RepoInfo::find(const std::string& path) const {
  for (const RemoteFile& f : files) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

std::string resolve_url(const HubSettings& settings, const std::string& repo,
                        const std::string& commit, const std::string& path) {
  return settings.endpoint + "/" + repo + "/resolve/" + url_encode_path(commit) + "/" +
         url_encode_path(path);
}

void check_status(const HttpResponse& response, const HubSettings& settings,
                  const std::string& repo, const std::string& what, const std::string& url) {
  const long status = response.status;
  if (status == 200 || status == 206) return;
  if (status == 401 || status == 403) {
    fail(
        "{} answered {} for {}: the repository is gated or private. Accept its licence on "
        "{}/{} and set HF_TOKEN to an access token with read permission{}",
        settings.endpoint, status, what, settings.endpoint, repo,
        settings.token.empty() ? " (no token is set)" : " (the token set was refused)");
  }
  if (status == 404) {
    fail("{} answered 404 for {}: no such repository, revision or file ({})", settings.endpoint,
         what, url);
  }
  if (status >= 500) {
    fail("{} answered {} for {}: the server failed; try again later ({})", settings.endpoint,
         status, what, url);
  }
  fail("{} answered {} for {} ({})", settings.endpoint, status, what, url);
}

RepoInfo fetch_repo_info(HttpClient& http, const HubSettings& settings, const RepoSpec& spec) {
  const std::string url = settings.endpoint + "/api/models/" + spec.repo + "/revision/" +
                          url_encode_path(spec.revision) + "?blobs=true";
  HttpResponse response;
  try {
    response = http.get(url);
  } catch (const TransferError& e) {
    fail("cannot reach {}: {} (HF_HUB_OFFLINE=1 uses the cache only)", settings.endpoint, e.what());
  }
  check_status(response, settings, spec.repo, spec.repo + " (revision " + spec.revision + ")", url);
  RepoInfo info;
  try {
    const nlohmann::json j = nlohmann::json::parse(response.body);
    info.commit = j.at("sha").get<std::string>();
    for (const auto& sibling : j.at("siblings")) info.files.push_back(parse_sibling(sibling));
  } catch (const nlohmann::json::exception& e) {
    fail("{} sent a model description that is not understood ({}): {}", settings.endpoint, url,
         e.what());
  }
  return info;
}

}  // namespace torchless::hub
