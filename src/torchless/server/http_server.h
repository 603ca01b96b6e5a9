#pragma once
// `torchless serve`'s HTTP layer (cpp-httplib): the OpenAI routes over a Scheduler and the
// model's tokenizer and chat template. Bad requests get OpenAI-style error bodies; a full queue
// gets 503 with Retry-After; a client that disconnects cancels its generation at once.
#include <atomic>
#include <memory>
#include <string>

#include "torchless/engine/scheduler.h"
#include "torchless/server/metrics.h"
#include "torchless/server/request_parser.h"
#include "torchless/tokenizer/chat_template.h"
#include "torchless/tokenizer/tokenizer.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace torchless::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (see port())
  std::string api_key;              // "": no authentication
  std::string model_id = "model";   // the name /v1/models lists
  size_t max_body_bytes = 4 << 20;  // larger bodies get 413
  int http_threads = 0;             // 0: enough for every slot and queued request
};

class HttpServer {
 public:
  // The scheduler and tokenizer must outlive the server.
  HttpServer(Scheduler& scheduler, const Tokenizer& tokenizer, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the socket (throws Error when it cannot) and returns the port.
  int bind();
  // Serves until stop(); call after bind().
  void listen();
  // New generations get 503 from now on; /health says so.
  void begin_shutdown() { shutting_down_ = true; }
  // Ends listen() once the handlers in flight have returned. Thread-safe.
  void stop();

 private:
  void add_routes();
  void handle_generation(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  std::vector<int32_t> prompt_tokens(const GenerationRequest& request) const;
  void handle_tokenize(const httplib::Request& req, httplib::Response& res) const;
  void handle_detokenize(const httplib::Request& req, httplib::Response& res) const;
  bool authorized(const httplib::Request& req) const;

  Scheduler& scheduler_;
  const Tokenizer& tokenizer_;
  ChatTemplate template_;
  ServerOptions options_;
  RequestLimits limits_;
  Metrics metrics_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<bool> shutting_down_ = false;
  int port_ = 0;
};

}  // namespace torchless::server
