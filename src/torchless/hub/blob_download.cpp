#include "torchless/hub/blob_download.h"

#include <chrono>
#include <thread>

#include "torchless/core/error.h"
#include "torchless/hub/progress_bar.h"
#include "torchless/hub/sha256.h"

namespace torchless::hub {
namespace {

namespace fs = std::filesystem;

constexpr int kAttempts = 5;

uint64_t existing_size(const fs::path& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// Downloads into `partial`, resuming from its length; throws Error when every attempt failed
// (the partial file stays, for the next command to resume).
void fetch(HttpClient& http, const HubSettings& settings, const std::string& repo,
           const RemoteFile& file, const std::string& url, const fs::path& partial) {
  uint64_t offset = existing_size(partial);
  if (file.size > 0 && offset > file.size) offset = 0;  // not the same file: start again
  ProgressBar bar(file.path, file.size, offset);
  for (int attempt = 1;; ++attempt) {
    HttpResponse response;
    try {
      response = http.download(url, partial, offset, [&bar](uint64_t n) { bar.update(n); });
    } catch (const TransferError& e) {
      if (!e.retryable() || attempt == kAttempts) {
        fail("downloading {} from {} failed: {} (run the command again to resume)", file.path,
             settings.endpoint, e.what());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
      offset = existing_size(partial);
      continue;
    }
    if (response.status == 416 && offset > 0) {  // the partial file does not fit: start again
      fs::remove(partial);
      offset = 0;
      continue;
    }
    check_status(response, settings, repo, file.path, url);
    break;
  }
  bar.update(existing_size(partial));
  bar.finish();
}

void verify(const RemoteFile& file, const fs::path& partial) {
  const uint64_t size = existing_size(partial);
  if (file.size > 0 && size != file.size) {
    fs::remove(partial);
    fail("{}: downloaded {} bytes but the hub lists {}; the file was deleted", file.path, size,
         file.size);
  }
  if (file.sha256.empty()) return;
  const std::string actual = sha256_file_hex(partial);
  if (actual != file.sha256) {
    fs::remove(partial);
    fail("{}: SHA-256 {} differs from the hub's {}: the download is corrupt and was deleted",
         file.path, actual, file.sha256);
  }
}

}  // namespace

void download_to_cache(HttpClient& http, const HubSettings& settings, const RepoCache& cache,
                       const std::string& repo, const std::string& commit, const RemoteFile& file) {
  const std::string blob_name = file.blob_name();
  if (blob_name.empty() || blob_name.find('/') != std::string::npos || blob_name[0] == '.') {
    fail("the hub gives {} no usable blob id", file.path);
  }
  const fs::path blob = cache.blob_path(blob_name);
  if (!fs::exists(blob)) {  // another revision may have brought the same content
    fs::create_directories(blob.parent_path());
    const fs::path partial = blob.string() + ".incomplete";
    fetch(http, settings, repo, file, resolve_url(settings, repo, commit, file.path), partial);
    verify(file, partial);
    fs::rename(partial, blob);
  }
  cache.link(commit, file.path, blob_name);
}

}  // namespace torchless::hub
