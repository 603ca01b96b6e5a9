// `torchless serve`: an OpenAI-compatible HTTP server (see docs/server.md). The model is loaded
// once; a Scheduler runs the sequences and the server/ layer speaks HTTP. SIGTERM or Ctrl-C:
// stop accepting, let the running and queued requests finish, then exit; a second signal
// cancels what is still running.
#include <pthread.h>

#include <csignal>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/app/model_options.h"
#include "torchless/core/error.h"
#include "torchless/engine/session.h"
#include "torchless/server/http_server.h"

namespace torchless::app {
namespace {

struct ServeOptions {
  ModelOptions model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int max_queue = 64;
  std::string api_key;
  std::string alias;
  size_t max_body_kib = 4096;
  bool deterministic = true;
};

// The signals serve handles itself, blocked in every thread and taken by sigwait().
sigset_t shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);  // internal: the server has stopped, the signal thread may end
  return set;
}

int run_serve(const ServeOptions& options) {
  if (options.port < 0 || options.port > 65535) fail("--port must be 0 .. 65535");
  if (options.parallel < 1 || options.parallel > 256) fail("--parallel must be 1 .. 256");
  if (options.max_queue < 0 || options.max_queue > 4096) fail("--max-queue must be 0 .. 4096");
  if (options.max_body_kib < 1) fail("--max-body-kib must be at least 1");
  // Before any thread starts (the backend's pool too), so that only sigwait() sees them.
  const sigset_t signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  SessionOptions session_opts = session_options(options.model);
  session_opts.batch_invariant = options.deterministic;
  // The scheduler owns the KV memory of every sequence; the session's own single-sequence cache
  // is not used, so it is made as small as possible.
  const int ctx = session_opts.n_ctx;
  session_opts.n_ctx = 1;
  Session session(session_opts);
  if (!session.has_tokenizer()) fail("serve needs the model's tokenizer");

  SchedulerOptions sched;
  sched.slots = options.parallel;
  sched.max_queue = options.max_queue;
  sched.n_ctx = ctx;
  sched.kv_dtype = session_opts.kv_dtype;
  std::unique_ptr<Scheduler> scheduler = session.make_scheduler(sched);

  server::ServerOptions http;
  http.host = options.host;
  http.port = options.port;
  http.api_key = options.api_key;
  http.model_id = !options.alias.empty()
                      ? options.alias
                      : std::filesystem::path(options.model.model).filename().string();
  http.max_body_bytes = options.max_body_kib * 1024;
  server::HttpServer server(*scheduler, session.tokenizer(), http);
  const int port = server.bind();

  // First SIGTERM/SIGINT: drain, then stop the server; a second: cancel what still runs;
  // SIGUSR1 (from below, once listen() returned): done.
  std::thread signal_thread([&] {
    std::thread drain;
    for (int sig = 0; sigwait(&signals, &sig) == 0 && sig != SIGUSR1;) {
      if (drain.joinable()) {
        scheduler->shutdown(/*drain=*/false);
        continue;
      }
      fmt::print(stderr, "serve: finishing the requests in flight (signal again to cancel)\n");
      server.begin_shutdown();
      drain = std::thread([&] {
        scheduler->shutdown(/*drain=*/true);
        server.stop();
      });
    }
    if (drain.joinable()) drain.join();
  });
  fmt::print(stderr, "serve: {} on http://{}:{} ({} slots, context {}, backend {})\n",
             http.model_id, options.host, port, sched.slots, scheduler->n_ctx(),
             session.backend().name());
  server.listen();
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  scheduler->shutdown(/*drain=*/false);
  fmt::print(stderr, "serve: stopped\n");
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto options = std::make_shared<ServeOptions>();
  add_model_options(app, options->model);
  app.add_option("--host", options->host, "address to listen on (loopback by default)")
      ->capture_default_str();
  app.add_option("--port", options->port, "TCP port (0: any free one)")->capture_default_str();
  app.add_option("--parallel", options->parallel, "sequences that run at once")
      ->capture_default_str();
  app.add_option("--max-queue", options->max_queue,
                 "requests that may wait for a slot; more get 503")
      ->capture_default_str();
  app.add_option("--api-key", options->api_key, "require 'Authorization: Bearer KEY'");
  app.add_option("-a,--alias", options->alias, "model name in the API (default: the file name)");
  app.add_flag("--deterministic,!--no-deterministic", options->deterministic,
               "logits independent of what else runs in the batch (default; Metal then batches "
               "matmuls with its mat-vec kernel)");
  app.add_option("--max-body-kib", options->max_body_kib, "largest request body (KiB)")
      ->capture_default_str();
  return [options] { return run_serve(*options); };
}

const bool registered =
    register_command({"serve", "an OpenAI-compatible HTTP server (docs/server.md)", setup});

}  // namespace
}  // namespace torchless::app
