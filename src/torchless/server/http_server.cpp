#include "torchless/server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <ctime>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/core/error.h"
#include "torchless/server/generation.h"
#include "torchless/server/responses.h"

namespace torchless::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kJson = "application/json";
// How often a waiting handler wakes up. cpp-httplib 0.11 cannot tell that a client closed its
// connection until a write fails, so a handler that has had nothing to send for a poll writes
// something its client ignores: an SSE comment in a stream, a space before a JSON body (JSON
// allows leading whitespace). The second write after the client went away fails, and the
// releaser then cancels the sequence.
constexpr auto kPollInterval = 50ms;
constexpr const char* kSseHeartbeat = ":\n\n";
constexpr const char* kJsonHeartbeat = " ";

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), kJson);
}

void send_error(httplib::Response& res, const ApiError& error) {
  send_json(res, error.status, error.body());
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}", prefix, rng());
}

std::string special_text(const Tokenizer& tok, int32_t id) {
  return id >= 0 ? tok.token_to_piece(id, /*special=*/true) : std::string();
}

ApiError error_for_status(int status, const httplib::Request& req) {
  switch (status) {
    case 404:
      return {404, fmt::format("no route {} {}", req.method, req.path), "invalid_request_error", "",
              "not_found"};
    case 405:
      return {405, fmt::format("{} does not accept {}", req.path, req.method),
              "invalid_request_error", "", "method_not_allowed"};
    case 413:
      return {413, "the request body is too large", "invalid_request_error", "", "body_too_large"};
    default:
      return {status, fmt::format("HTTP error {}", status),
              status >= 500 ? "server_error" : "invalid_request_error", "", ""};
  }
}

// State of one response body being written, shared by the content provider's calls.
struct BodyWriter {
  std::shared_ptr<Generation> generation;
  uint64_t id = 0;
  ResponseMeta meta;
  GenerationRequest request;
  int prompt_tokens = 0;
  bool started = false;
  bool finished = false;
  std::string text;  // non-streamed: everything so far
  std::vector<TokenLogprob> logprobs;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
};

std::optional<json> chunk_logprobs(const BodyWriter& w, const std::vector<TokenLogprob>& tokens,
                                   size_t offset) {
  if (!w.request.logprobs || tokens.empty()) return std::nullopt;
  return logprobs_json(w.meta.endpoint, tokens, offset);
}

bool write(httplib::DataSink& sink, const std::string& data) {
  return sink.write(data.data(), data.size());
}

// Writes `text` when nothing was written for a poll interval (see kPollInterval).
bool heartbeat(BodyWriter& w, httplib::DataSink& sink, const char* text) {
  const auto now = std::chrono::steady_clock::now();
  if (now - w.last_write < kPollInterval) return true;
  w.last_write = now;
  return write(sink, text);
}

// One call of the streaming content provider: writes what arrived as SSE chunks.
bool stream_step(BodyWriter& w, httplib::DataSink& sink) {
  if (!w.started) {
    w.started = true;
    if (w.meta.endpoint == Endpoint::ChatCompletions &&
        !write(sink, sse_event(chunk_json(w.meta, "", true, "", std::nullopt,
                                          w.request.include_usage)))) {
      return false;
    }
  }
  Generation::Update u = w.generation->wait(kPollInterval);
  if (!u.text.empty() || !u.logprobs.empty()) {
    const auto lp = chunk_logprobs(w, u.logprobs, w.text.size());
    w.text += u.text;
    if (!write(sink,
               sse_event(chunk_json(w.meta, u.text, false, "", lp, w.request.include_usage)))) {
      return false;
    }
  }
  if (!u.ended) {
    if (!u.text.empty() || !u.logprobs.empty()) {
      w.last_write = std::chrono::steady_clock::now();
      return true;
    }
    return heartbeat(w, sink, kSseHeartbeat);
  }
  const SequenceSummary& s = u.summary;
  if (s.end == SequenceEnd::Failed || s.end == SequenceEnd::Cancelled) {
    const ApiError e{500,
                     s.end == SequenceEnd::Failed ? "generation failed: " + s.error
                                                  : "the server is shutting down",
                     "server_error", "", ""};
    if (!write(sink, sse_event(e.body()))) return false;
  } else {
    if (!write(sink, sse_event(chunk_json(w.meta, "", false, u.finish_reason, std::nullopt,
                                          w.request.include_usage)))) {
      return false;
    }
    if (w.request.include_usage &&
        !write(sink, sse_event(usage_chunk_json(w.meta, {w.prompt_tokens, s.generated_tokens})))) {
      return false;
    }
  }
  if (!write(sink, kSseDone)) return false;
  w.finished = true;
  sink.done();
  return true;
}

// One call of the whole-body content provider: collects, and writes the body at the end.
bool body_step(BodyWriter& w, httplib::DataSink& sink) {
  Generation::Update u = w.generation->wait(kPollInterval);
  w.text += u.text;
  for (auto& t : u.logprobs) w.logprobs.push_back(std::move(t));
  if (!u.ended) return heartbeat(w, sink, kJsonHeartbeat);
  const SequenceSummary& s = u.summary;
  json body;
  if (s.end == SequenceEnd::Failed || s.end == SequenceEnd::Cancelled) {
    body = ApiError{500,
                    s.end == SequenceEnd::Failed ? "generation failed: " + s.error
                                                 : "the server is shutting down",
                    "server_error", "", ""}
               .body();
  } else {
    std::optional<json> lp;
    if (w.request.logprobs) lp = logprobs_json(w.meta.endpoint, w.logprobs);
    body =
        completion_json(w.meta, w.text, u.finish_reason, {w.prompt_tokens, s.generated_tokens}, lp);
  }
  if (!write(sink, dump(body))) return false;
  w.finished = true;
  sink.done();
  return true;
}

}  // namespace

HttpServer::HttpServer(Scheduler& scheduler, const Tokenizer& tokenizer, ServerOptions options)
    : scheduler_(scheduler),
      tokenizer_(tokenizer),
      template_(ChatTemplate::for_tokenizer(tokenizer)),
      options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()) {
  limits_.n_vocab = tokenizer.n_vocab();
  const SchedulerStats stats = scheduler.stats();
  // Every slot and queued request holds a handler thread while it waits, plus a few for the
  // cheap routes (health, metrics) and for idle keep-alive connections.
  const int threads =
      options_.http_threads > 0 ? options_.http_threads : stats.slots + stats.max_queue + 16;
  http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  // httplib's default also sets SO_REUSEPORT, which lets a second server bind the same port and
  // silently take half the connections; a busy port must be an error instead.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_timeout(2);
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
  add_routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
  } else if (http_->bind_to_port(options_.host, options_.port)) {
    port_ = options_.port;
  } else {
    port_ = -1;
  }
  if (port_ < 0) fail("cannot listen on {}:{}", options_.host, options_.port);
  return port_;
}

void HttpServer::listen() {
  http_->listen_after_bind();
}

void HttpServer::stop() {
  http_->stop();
}

bool HttpServer::authorized(const httplib::Request& req) const {
  if (options_.api_key.empty()) return true;
  return req.get_header_value("Authorization") == "Bearer " + options_.api_key;
}

void HttpServer::add_routes() {
  httplib::Server& s = *http_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health" || authorized(req))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, {401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                     "invalid_request_error", "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) send_error(res, error_for_status(res.status, req));
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, {500, what, "server_error", "", ""});
      });
  s.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    metrics_.count_response(res.status);
  });

  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, Endpoint::ChatCompletions);
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, Endpoint::Completions);
  });
  s.Post("/tokenize", [this](const auto& req, auto& res) { handle_tokenize(req, res); });
  s.Post("/detokenize", [this](const auto& req, auto& res) { handle_detokenize(req, res); });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const json model = {{"id", options_.model_id},
                        {"object", "model"},
                        {"created", static_cast<int64_t>(std::time(nullptr))},
                        {"owned_by", "torchless"}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (shutting_down_) {
      send_json(res, 503, {{"status", "shutting down"}});
    } else {
      send_json(res, 200, {{"status", "ok"}});
    }
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(scheduler_.stats()), "text/plain; version=0.0.4");
  });

  // The other methods on known paths: 405, not 404.
  const auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    send_error(res, error_for_status(405, req));
  };
  for (const char* path : {"/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"}) {
    s.Get(path, not_allowed);
    s.Put(path, not_allowed);
    s.Patch(path, not_allowed);
    s.Delete(path, not_allowed);
  }
  for (const char* path : {"/v1/models", "/health", "/metrics"}) {
    s.Post(path, not_allowed);
    s.Put(path, not_allowed);
    s.Patch(path, not_allowed);
    s.Delete(path, not_allowed);
  }
}

std::vector<int32_t> HttpServer::prompt_tokens(const GenerationRequest& request) const {
  if (request.endpoint == Endpoint::Completions) {
    if (!request.prompt_ids.empty()) return request.prompt_ids;
    return tokenizer_.encode(request.prompt);
  }
  const std::string bos = special_text(tokenizer_, tokenizer_.bos());
  const std::string text =
      template_.apply(request.messages, true, bos, special_text(tokenizer_, tokenizer_.eos()));
  EncodeOptions encode;
  encode.parse_special = true;
  encode.add_bos = tokenizer_.add_bos() && (bos.empty() || text.rfind(bos, 0) != 0);
  encode.add_eos = false;
  return tokenizer_.encode(text, encode);
}

void HttpServer::handle_generation(const httplib::Request& req, httplib::Response& res,
                                   Endpoint endpoint) {
  Parsed<GenerationRequest> parsed = endpoint == Endpoint::ChatCompletions
                                         ? parse_chat_completion_request(req.body, limits_)
                                         : parse_completion_request(req.body, limits_);
  if (auto* error = std::get_if<ApiError>(&parsed)) return send_error(res, *error);
  auto writer = std::make_shared<BodyWriter>();
  writer->request = std::move(std::get<GenerationRequest>(parsed));
  const GenerationRequest& request = writer->request;

  SequenceRequest sequence;
  try {
    sequence.prompt = prompt_tokens(request);
  } catch (const Error& e) {  // the chat template refused the conversation
    return send_error(res, invalid_request(e.what(), "messages"));
  }
  if (sequence.prompt.size() >= static_cast<size_t>(scheduler_.n_ctx())) {
    return send_error(
        res, invalid_request(fmt::format("the prompt has {} tokens but the context holds {} "
                                         "(and needs room for at least one more)",
                                         sequence.prompt.size(), scheduler_.n_ctx()),
                             endpoint == Endpoint::Completions ? "prompt" : "messages",
                             "context_length_exceeded"));
  }
  if (shutting_down_) {
    res.set_header("Retry-After", "5");
    return send_error(res, {503, "the server is shutting down", "server_error", "", ""});
  }
  sequence.sampling = request.sampling;
  if (!request.seeded) sequence.sampling.seed = std::random_device{}();
  sequence.max_tokens = request.max_tokens;
  sequence.n_probs = request.logprobs ? request.top_logprobs : 0;
  sequence.format = request.format;
  writer->prompt_tokens = static_cast<int>(sequence.prompt.size());
  writer->generation = std::make_shared<Generation>(
      tokenizer_, request.stop, request.logprobs ? request.top_logprobs : -1, metrics_);
  try {
    writer->id = scheduler_.submit(std::move(sequence), writer->generation->callbacks());
  } catch (const QueueFull& e) {
    res.set_header("Retry-After", "1");
    return send_error(res, {503, fmt::format("the server is busy: {}", e.what()), "server_error",
                            "", "queue_full"});
  } catch (const Error& e) {
    if (shutting_down_) {
      return send_error(res, {503, "the server is shutting down", "server_error", "", ""});
    }
    return send_error(res, invalid_request(e.what()));
  }

  const bool chat = endpoint == Endpoint::ChatCompletions;
  writer->meta = {endpoint, random_id(chat ? "chatcmpl-" : "cmpl-"),
                  static_cast<int64_t>(std::time(nullptr)),
                  request.model.empty() ? options_.model_id : request.model};
  const bool stream = request.stream;
  res.status = 200;
  if (stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
  }
  res.set_chunked_content_provider(
      stream ? "text/event-stream" : kJson,
      [writer, stream](size_t, httplib::DataSink& sink) {
        return stream ? stream_step(*writer, sink) : body_step(*writer, sink);
      },
      // Runs however the response ends: a client gone mid-way cancels the sequence at once.
      [this, writer](bool) {
        if (writer->finished) return;
        writer->generation->abandon();
        scheduler_.cancel(writer->id);
        metrics_.count_cancelled();
      });
}

void HttpServer::handle_tokenize(const httplib::Request& req, httplib::Response& res) const {
  Parsed<TokenizeRequest> parsed = parse_tokenize_request(req.body);
  if (auto* error = std::get_if<ApiError>(&parsed)) return send_error(res, *error);
  const TokenizeRequest& r = std::get<TokenizeRequest>(parsed);
  EncodeOptions encode;
  encode.parse_special = r.parse_special;
  encode.add_bos = r.add_special && tokenizer_.add_bos();
  encode.add_eos = false;
  const std::vector<int32_t> ids = tokenizer_.encode(r.content, encode);
  json tokens = json::array();
  for (const int32_t id : ids) {
    if (r.with_pieces) {
      tokens.push_back({{"id", id}, {"piece", tokenizer_.token_to_piece(id, true)}});
    } else {
      tokens.push_back(id);
    }
  }
  send_json(res, 200, {{"tokens", tokens}});
}

void HttpServer::handle_detokenize(const httplib::Request& req, httplib::Response& res) const {
  Parsed<DetokenizeRequest> parsed = parse_detokenize_request(req.body, limits_);
  if (auto* error = std::get_if<ApiError>(&parsed)) return send_error(res, *error);
  send_json(res, 200, {{"content", tokenizer_.decode(std::get<DetokenizeRequest>(parsed).tokens)}});
}

}  // namespace torchless::server
