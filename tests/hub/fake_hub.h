#pragma once
// A local HTTP server that answers as the Hugging Face hub does, for the hub client's tests
// (no test machine reaches the real hub):
//   GET /api/models/ORG/NAME/revision/REV   model info: sha (the commit) and siblings with
//                                          rfilename, size, blobId and, for LFS files,
//                                          lfs {sha256, size, pointerSize}
//   GET /ORG/NAME/resolve/REV/PATH          small files: the bytes, with ETag and X-Repo-Commit;
//                                          LFS files: 302 to /cdn/... with X-Repo-Commit,
//                                          X-Linked-Etag, X-Linked-Size, as the hub answers
//   GET /cdn/ORG/NAME/PATH                  the bytes, HTTP ranges honoured
// and misbehaves on request: a connection dropped mid-file, corrupt bytes, a fixed error
// status, a token required.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace torchless::test {

struct FakeFile {
  std::string path;
  std::string content;
  bool lfs = true;
};

struct LoggedRequest {
  std::string path;
  std::string range;  // the Range header ("" when none)
  std::string authorization;
};

class FakeHub {
 public:
  FakeHub();
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const { return endpoint_; }
  void add_repo(const std::string& repo, const std::string& commit, std::vector<FakeFile> files);

  // The first transfer of PATH's bytes stops after `bytes` bytes (the connection is closed).
  void drop_once_after(const std::string& path, size_t bytes);
  // PATH is served with one byte changed (its listed SHA-256 no longer matches).
  void corrupt(const std::string& path);
  // Every API and resolve request for REPO is answered `status`.
  void answer_status(const std::string& repo, int status);
  // REPO answers 401 unless the request carries "Authorization: Bearer TOKEN".
  void require_token(const std::string& repo, const std::string& token);

  std::vector<LoggedRequest> requests() const;
  size_t request_count() const { return requests().size(); }
  static std::string sha256_hex(const std::string& bytes);

 private:
  struct Repo {
    std::string commit;
    std::vector<FakeFile> files;
    int status = 0;
    std::string token;
  };
  const Repo* find_repo(const std::string& repo) const;
  const FakeFile* find_file(const Repo& repo, const std::string& path) const;
  void install_routes();

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string endpoint_;
  std::string cdn_;
  mutable std::mutex mutex_;
  std::map<std::string, Repo> repos_;
  std::map<std::string, size_t> drops_;
  std::map<std::string, bool> corrupt_;
  std::vector<LoggedRequest> log_;
};

}  // namespace torchless::test
