#include "hub/fake_hub.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <nlohmann/json.hpp>

namespace torchless::test {
namespace {

std::string digest_hex(const EVP_MD* md, const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, md, nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

// The git blob id: SHA-1 of "blob LENGTH\0CONTENT".
std::string git_blob_id(const std::string& content) {
  std::string object = fmt::format("blob {}", content.size());
  object.push_back('\0');
  return digest_hex(EVP_sha1(), object + content);
}

}  // namespace

std::string FakeHub::sha256_hex(const std::string& bytes) {
  return digest_hex(EVP_sha256(), bytes);
}

FakeHub::FakeHub() : server_(std::make_unique<httplib::Server>()) {
  install_routes();
  const int port = server_->bind_to_any_port("127.0.0.1");
  endpoint_ = fmt::format("http://127.0.0.1:{}", port);
  cdn_ = fmt::format("http://localhost:{}", port);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeHub::~FakeHub() {
  server_->stop();
  thread_.join();
}

void FakeHub::add_repo(const std::string& repo, const std::string& commit,
                       std::vector<FakeFile> files) {
  std::lock_guard lock(mutex_);
  repos_[repo] = Repo{commit, std::move(files), 0, ""};
}

void FakeHub::drop_once_after(const std::string& path, size_t bytes) {
  std::lock_guard lock(mutex_);
  drops_[path] = bytes;
}

void FakeHub::corrupt(const std::string& path) {
  std::lock_guard lock(mutex_);
  corrupt_[path] = true;
}

void FakeHub::answer_status(const std::string& repo, int status) {
  std::lock_guard lock(mutex_);
  repos_[repo].status = status;
}

void FakeHub::require_token(const std::string& repo, const std::string& token) {
  std::lock_guard lock(mutex_);
  repos_[repo].token = token;
}

std::vector<LoggedRequest> FakeHub::requests() const {
  std::lock_guard lock(mutex_);
  return log_;
}

const FakeHub::Repo* FakeHub::find_repo(const std::string& repo) const {
  const auto it = repos_.find(repo);
  return it == repos_.end() ? nullptr : &it->second;
}

const FakeFile* FakeHub::find_file(const Repo& repo, const std::string& path) const {
  for (const FakeFile& f : repo.files) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

void FakeHub::install_routes() {
  server_->set_logger([this](const httplib::Request& req, const httplib::Response&) {
    std::lock_guard lock(mutex_);
    log_.push_back(
        {req.path, req.get_header_value("Range"), req.get_header_value("Authorization")});
  });
  // Refuses a request for a misbehaving or gated repository; true when it was answered.
  auto refused = [](const Repo& repo, const httplib::Request& req, httplib::Response& res) {
    if (repo.status != 0) {
      res.status = repo.status;
      res.set_content(R"({"error":"as configured"})", "application/json");
      return true;
    }
    if (!repo.token.empty() && req.get_header_value("Authorization") != "Bearer " + repo.token) {
      res.status = 401;
      res.set_content(R"({"error":"Access to this model is restricted."})", "application/json");
      return true;
    }
    return false;
  };

  server_->Get(R"(/api/models/([^/]+/[^/]+)/revision/([^/]+))", [this, refused](
                                                                    const httplib::Request& req,
                                                                    httplib::Response& res) {
    std::lock_guard lock(mutex_);
    const Repo* repo = find_repo(req.matches[1]);
    if (!repo) {
      res.status = 404;
      res.set_content(R"({"error":"Repository not found"})", "application/json");
      return;
    }
    if (refused(*repo, req, res)) return;
    if (req.matches[2] != "main" && req.matches[2] != repo->commit) {
      res.status = 404;
      res.set_content(R"({"error":"Invalid rev id"})", "application/json");
      return;
    }
    nlohmann::json siblings = nlohmann::json::array();
    for (const FakeFile& f : repo->files) {
      nlohmann::json s = {{"rfilename", f.path},
                          {"size", f.content.size()},
                          {"blobId", git_blob_id(f.lfs ? "pointer" + f.path : f.content)}};
      if (f.lfs) {
        s["lfs"] = {
            {"sha256", sha256_hex(f.content)}, {"size", f.content.size()}, {"pointerSize", 134}};
      }
      siblings.push_back(s);
    }
    const nlohmann::json info = {
        {"id", req.matches[1]}, {"sha", repo->commit}, {"private", false}, {"siblings", siblings}};
    res.set_content(info.dump(), "application/json");
  });

  server_->Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
               [this, refused](const httplib::Request& req, httplib::Response& res) {
                 std::lock_guard lock(mutex_);
                 const Repo* repo = find_repo(req.matches[1]);
                 const FakeFile* file = repo ? find_file(*repo, req.matches[3]) : nullptr;
                 if (repo && refused(*repo, req, res)) return;
                 if (!file) {
                   res.status = 404;
                   res.set_header("X-Error-Code", "EntryNotFound");
                   return;
                 }
                 res.set_header("X-Repo-Commit", repo->commit);
                 if (file->lfs) {
                   const std::string sha = sha256_hex(file->content);
                   res.set_header("X-Linked-Etag", "\"" + sha + "\"");
                   res.set_header("X-Linked-Size", std::to_string(file->content.size()));
                   res.set_header("ETag", "\"" + git_blob_id("pointer" + file->path) + "\"");
                   // The CDN is another host (as the hub's is), so no token must follow.
                   res.set_redirect(cdn_ + "/cdn/" + req.matches[1].str() + "/" + file->path, 302);
                   return;
                 }
                 res.set_header("ETag", "\"" + git_blob_id(file->content) + "\"");
                 res.set_content(file->content, "application/octet-stream");
               });

  server_->Get(R"(/cdn/([^/]+/[^/]+)/(.+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 std::string content;
                 size_t drop_at = SIZE_MAX;
                 {
                   std::lock_guard lock(mutex_);
                   const Repo* repo = find_repo(req.matches[1]);
                   const FakeFile* file = repo ? find_file(*repo, req.matches[2]) : nullptr;
                   if (!file) {
                     res.status = 404;
                     return;
                   }
                   content = file->content;
                   if (corrupt_.count(file->path) && !content.empty())
                     content[content.size() / 2] ^= 0x5a;
                   if (const auto it = drops_.find(file->path); it != drops_.end()) {
                     drop_at = it->second;
                     drops_.erase(it);
                   }
                 }
                 auto bytes = std::make_shared<std::string>(std::move(content));
                 res.set_header("ETag", "\"" + sha256_hex(*bytes) + "\"");
                 res.set_content_provider(
                     bytes->size(), "application/octet-stream",
                     [bytes, drop_at](size_t offset, size_t length, httplib::DataSink& sink) {
                       const size_t end = std::min(offset + length, bytes->size());
                       for (size_t at = offset; at < end;) {
                         const size_t n = std::min<size_t>(16384, end - at);
                         if (at < drop_at && at + n > drop_at) {
                           sink.write(bytes->data() + at, drop_at - at);
                           return false;  // closes the connection mid-file
                         }
                         if (!sink.write(bytes->data() + at, n)) return false;
                         at += n;
                       }
                       return true;
                     });
               });
}

}  // namespace torchless::test
