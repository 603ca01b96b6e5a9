#pragma once
// HTTP(S) through libcurl: GET into memory, or into a file from a byte offset (a Range
// request, for resuming). Redirects are followed (the hub sends large files to a CDN); the
// bearer token goes to the first host only (libcurl drops Authorization on a redirect to
// another host). Answers of any status come back to the caller; only transport failures throw.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "torchless/core/error.h"

namespace torchless::hub {

// The connection failed or broke off (no complete answer). `retryable` when resuming may help
// (a dropped connection, a timeout), not for an unknown host or a refused connection.
class TransferError : public Error {
 public:
  TransferError(const std::string& message, bool retryable)
      : Error(message), retryable_(retryable) {}
  bool retryable() const { return retryable_; }

 private:
  bool retryable_;
};

struct HttpResponse {
  long status = 0;
  // Lower-case names, from every answer of a redirect chain (a later answer's value wins), so
  // the hub's X-Repo-Commit survives the redirect to the CDN.
  std::map<std::string, std::string> headers;
  std::string body;  // get(): the body; download(): the body of an error answer (>= 300)
};

class HttpClient {
 public:
  explicit HttpClient(std::string token);
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  ~HttpClient();

  HttpResponse get(const std::string& url);
  // Appends the body of a 200/206 answer to `file` from byte `offset` (asked for with a Range
  // header when > 0; a server that answers 200 instead restarts the file at 0). `on_bytes` gets
  // the file's length as data arrive.
  HttpResponse download(const std::string& url, const std::filesystem::path& file, uint64_t offset,
                        const std::function<void(uint64_t)>& on_bytes);

 private:
  void* curl_;  // CURL*
  std::string token_;
};

// "a/b c.gguf" -> "a/b%20c.gguf": each path segment percent-encoded, slashes kept.
std::string url_encode_path(const std::string& path);

}  // namespace torchless::hub
