#include "torchless/hub/http_client.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>

#include <curl/curl.h>
#include <fmt/format.h>
#include <unistd.h>

namespace torchless::hub {
namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Where the body of an answer goes: a string, or a file once the status says it is the
// content asked for.
struct Sink {
  CURL* curl = nullptr;
  std::string* text = nullptr;
  std::FILE* file = nullptr;
  uint64_t offset = 0;
  uint64_t length = 0;  // of the file so far
  bool decided = false;
  bool to_file = false;
  std::string error_body;
  const std::function<void(uint64_t)>* on_bytes = nullptr;
};

size_t write_text(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t write_file(char* data, size_t size, size_t count, void* user) {
  Sink& sink = *static_cast<Sink*>(user);
  const size_t n = size * count;
  if (!sink.decided) {
    sink.decided = true;
    long status = 0;
    curl_easy_getinfo(sink.curl, CURLINFO_RESPONSE_CODE, &status);
    sink.to_file = status == 200 || status == 206;
    if (status == 200 && sink.offset > 0) {
      // The range was ignored: the body is the whole file.
      std::fflush(sink.file);
      if (::ftruncate(::fileno(sink.file), 0) != 0) return 0;
      sink.length = 0;
    }
  }
  if (!sink.to_file) {
    if (sink.error_body.size() < 65536) sink.error_body.append(data, n);
    return n;
  }
  if (std::fwrite(data, 1, n, sink.file) != n) return 0;
  sink.length += n;
  if (*sink.on_bytes) (*sink.on_bytes)(sink.length);
  return n;
}

size_t read_header(char* data, size_t size, size_t count, void* user) {
  auto& headers = *static_cast<std::map<std::string, std::string>*>(user);
  const std::string line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != std::string::npos && line.rfind("HTTP/", 0) != 0) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    const size_t first = value.find_first_not_of(" \t");
    const size_t last = value.find_last_not_of(" \t\r\n");
    headers[name] = first == std::string::npos ? "" : value.substr(first, last - first + 1);
  }
  return size * count;
}

bool is_retryable(CURLcode code) {
  switch (code) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

class Request {
 public:
  Request(CURL* curl, const std::string& url, const std::string& token) : curl_(curl) {
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 byte/s for a minute) fails, to be resumed.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "torchless/0.1.0");
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
    if (!token.empty()) {
      headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + token).c_str());
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers_);
    }
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request() { curl_slist_free_all(headers_); }

  HttpResponse perform(const std::string& url) {
    HttpResponse response;
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &response.headers);
    const CURLcode code = curl_easy_perform(curl_);
    if (code != CURLE_OK) {
      const std::string detail = error_[0] ? error_ : curl_easy_strerror(code);
      throw TransferError(fmt::format("{}: {}", url, detail), is_retryable(code));
    }
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
  }

 private:
  CURL* curl_;
  curl_slist* headers_ = nullptr;
  char error_[CURL_ERROR_SIZE] = {};
};

}  // namespace

HttpClient::HttpClient(std::string token) : token_(std::move(token)) {
  static CurlGlobal global;
  curl_ = curl_easy_init();
  if (!curl_) fail("libcurl could not start");
}

HttpClient::~HttpClient() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpResponse HttpClient::get(const std::string& url) {
  CURL* curl = static_cast<CURL*>(curl_);
  Request request(curl, url, token_);
  std::string body;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_text);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  HttpResponse response = request.perform(url);
  response.body = std::move(body);
  return response;
}

HttpResponse HttpClient::download(const std::string& url, const std::filesystem::path& file,
                                  uint64_t offset, const std::function<void(uint64_t)>& on_bytes) {
  CURL* curl = static_cast<CURL*>(curl_);
  std::unique_ptr<std::FILE, FileCloser> out(std::fopen(file.c_str(), offset > 0 ? "ab" : "wb"));
  if (!out) fail("cannot write {}", file.string());
  Request request(curl, url, token_);
  const std::string range = fmt::format("{}-", offset);
  if (offset > 0) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  Sink sink;
  sink.curl = curl;
  sink.file = out.get();
  sink.offset = offset;
  sink.length = offset;
  sink.on_bytes = &on_bytes;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_file);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  HttpResponse response = request.perform(url);
  if (std::fflush(out.get()) != 0) fail("cannot write {}", file.string());
  response.body = std::move(sink.error_body);
  return response;
}

std::string url_encode_path(const std::string& path) {
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace torchless::hub
