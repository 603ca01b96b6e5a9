// The HTTP server of builds without a usable cpp-httplib: the libc++ build on Linux, where
// Debian's libcpp-httplib.so (built against libstdc++, std::string in its API) cannot be linked.
// `torchless serve` then says why it is unavailable; everything else works.
#include "torchless/core/error.h"
#include "torchless/server/http_server.h"

namespace httplib {
class Server {};  // never constructed here; completes the type for ~HttpServer
}  // namespace httplib

namespace torchless::server {

HttpServer::HttpServer(Scheduler& scheduler, const Tokenizer& tokenizer, ServerOptions options)
    : scheduler_(scheduler),
      tokenizer_(tokenizer),
      template_(ChatTemplate::for_tokenizer(tokenizer)),
      options_(std::move(options)) {
  fail(
      "this torchless was built without the HTTP server (cpp-httplib was not usable: a libc++ "
      "build against a libstdc++ cpp-httplib)");
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  return -1;
}

void HttpServer::listen() {}

void HttpServer::stop() {}

}  // namespace torchless::server
