// `torchless bench`: prompt-processing and generation speed in the spirit of llama-bench:
// each test runs -r times after a warm-up, and reports tokens/s as mean ± standard deviation.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/app/command.h"
#include "torchless/app/model_options.h"
#include "torchless/core/error.h"
#include "torchless/core/thread_pool.h"
#include "torchless/engine/session.h"

namespace torchless::app {
namespace {

struct BenchOptions {
  ModelOptions model;
  int n_prompt = 512;
  int n_gen = 128;
  int repetitions = 3;
  std::string output = "table";
  double bandwidth_gbs = 0;  // reference bandwidth for the fraction; 0: the device's peak
};

struct BenchResult {
  std::string test;  // "pp512", "tg128"
  int n_tokens = 0;
  std::vector<double> tokens_per_s;
  double mean() const {
    return std::accumulate(tokens_per_s.begin(), tokens_per_s.end(), 0.0) /
           static_cast<double>(tokens_per_s.size());
  }
  double stddev() const {
    if (tokens_per_s.size() < 2) return 0.0;
    double sum = 0;
    for (double v : tokens_per_s) sum += (v - mean()) * (v - mean());
    return std::sqrt(sum / static_cast<double>(tokens_per_s.size() - 1));
  }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int32_t> random_tokens(int n, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = pick(rng);
  return ids;
}

// One batched pass over n random tokens from an empty sequence.
double time_prompt(Session& session, int n, uint32_t seed) {
  const auto ids = random_tokens(n, session.config().n_vocab, seed);
  session.reset();
  const auto start = std::chrono::steady_clock::now();
  session.append(ids);
  return seconds_since(start);
}

// n single-token decode steps, each feeding back the argmax of the previous logits.
double time_generation(Session& session, int n, uint32_t seed) {
  session.reset();
  auto logits = session.append(random_tokens(1, session.config().n_vocab, seed));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    const int32_t next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = session.append(std::span<const int32_t>(&next, 1));
  }
  return seconds_since(start);
}

BenchResult run_test(Session& session, bool prompt, int n, int repetitions) {
  BenchResult result{fmt::format("{}{}", prompt ? "pp" : "tg", n), n, {}};
  auto once = [&](uint32_t seed) {
    return prompt ? time_prompt(session, n, seed) : time_generation(session, n, seed);
  };
  once(0);  // warm-up: page in the weights, size the scratch buffers
  for (int r = 0; r < repetitions; ++r)
    result.tokens_per_s.push_back(n / once(static_cast<uint32_t>(r + 1)));
  return result;
}

// What the report says of the model: its name, weight bytes and parameter count, and the
// weight bytes one decode step reads: every weight once, except the token embedding table, of
// which it reads one row (unless the table is also the output head).
struct ModelSummary {
  std::string name;
  size_t bytes = 0;
  int64_t params = 0;
  size_t bytes_per_token = 0;
};

ModelSummary summarize(const LoadedModel& model) {
  ModelSummary s{model.config.name.empty() ? model.config.architecture : model.config.name};
  const bool tied = model.config.tied_embeddings || !model.weights.contains("output.weight");
  for (const auto& [name, view] : model.weights.all()) {
    s.bytes += view.nbytes;
    s.params += view.shape.numel();
    const bool embedding_only = name == "token_embd.weight" && !tied;
    s.bytes_per_token +=
        embedding_only ? view.nbytes / std::max<size_t>(1, view.shape.rows()) : view.nbytes;
  }
  return s;
}

// Fraction of the device's peak memory bandwidth a decode speed implies (0 when unknown).
double bandwidth_fraction(const ModelSummary& model, const DeviceInfo& device,
                          double tokens_per_s) {
  if (device.memory_bandwidth == 0) return 0.0;
  return static_cast<double>(model.bytes_per_token) * tokens_per_s /
         static_cast<double>(device.memory_bandwidth);
}

// The device, with --bandwidth-gbs (e.g. a measured copy bandwidth) in place of its peak.
DeviceInfo bench_device(const Session& session, double bandwidth_gbs) {
  DeviceInfo device = session.backend().device();
  if (bandwidth_gbs > 0) device.memory_bandwidth = static_cast<uint64_t>(bandwidth_gbs * 1e9);
  return device;
}

void print_table(const Session& session, const DeviceInfo& device, const ModelSummary& model,
                 int threads, const std::vector<BenchResult>& results) {
  fmt::print("| model | size | params | backend | threads | test | t/s |\n");
  fmt::print("| --- | ---: | ---: | --- | ---: | --- | ---: |\n");
  for (const BenchResult& r : results) {
    fmt::print("| {} | {:.2f} MiB | {:.3f} B | {} | {} | {} | {:.2f} ± {:.2f} |\n", model.name,
               static_cast<double>(model.bytes) / (1024.0 * 1024.0),
               static_cast<double>(model.params) / 1e9, session.backend().name(), threads, r.test,
               r.mean(), r.stddev());
  }
  fmt::print("\ndevice: {}; weight bytes read per generated token: {:.2f} MiB\n", device.name,
             static_cast<double>(model.bytes_per_token) / (1024.0 * 1024.0));
  for (const BenchResult& r : results) {
    if (r.test.rfind("tg", 0) != 0 || device.memory_bandwidth == 0) continue;
    fmt::print("{}: {:.1f} GB/s of weights, {:.2f} of {:.0f} GB/s\n", r.test,
               static_cast<double>(model.bytes_per_token) * r.mean() / 1e9,
               bandwidth_fraction(model, device, r.mean()),
               static_cast<double>(device.memory_bandwidth) / 1e9);
  }
}

int run_bench(const BenchOptions& o) {
  if (o.n_prompt < 0 || o.n_gen < 0 || o.repetitions < 1) {
    fail("-p and -n must be >= 0 and -r >= 1");
  }
  if (o.output != "table" && o.output != "json") fail("--output must be table or json");
  if (o.bandwidth_gbs < 0) fail("--bandwidth-gbs must not be negative");
  SessionOptions options = session_options(o.model);
  options.load_tokenizer = false;
  options.n_ctx = std::max(options.n_ctx, std::max(o.n_prompt, o.n_gen + 1) + 1);
  Session session(options);
  std::vector<BenchResult> results;
  if (o.n_prompt > 0) results.push_back(run_test(session, true, o.n_prompt, o.repetitions));
  if (o.n_gen > 0) results.push_back(run_test(session, false, o.n_gen, o.repetitions));
  const ModelSummary model = summarize(session.transformer().model());
  const int threads = options.threads > 0 ? options.threads : ThreadPool::default_thread_count();
  const DeviceInfo device = bench_device(session, o.bandwidth_gbs);
  if (o.output == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const BenchResult& r : results) {
      out.push_back({{"model", model.name},
                     {"model_bytes", model.bytes},
                     {"params", model.params},
                     {"test", r.test},
                     {"n_tokens", r.n_tokens},
                     {"backend", session.backend().name()},
                     {"threads", threads},
                     {"tokens_per_s", r.tokens_per_s},
                     {"mean", r.mean()},
                     {"stddev", r.stddev()},
                     {"weight_bytes_per_token", model.bytes_per_token},
                     {"bandwidth_gbs", static_cast<double>(device.memory_bandwidth) / 1e9},
                     {"bandwidth_fraction", bandwidth_fraction(model, device, r.mean())}});
    }
    fmt::print("{}\n", out.dump(2));
  } else {
    print_table(session, device, model, threads, results);
  }
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  add_model_options(app, o->model, {.tokenizer = false, .context = true});
  app.add_option("-p,--n-prompt", o->n_prompt, "prompt tokens (0: skip)")->capture_default_str();
  app.add_option("-n,--n-gen", o->n_gen, "generated tokens (0: skip)")->capture_default_str();
  app.add_option("-r,--repetitions", o->repetitions, "runs of each test")->capture_default_str();
  app.add_option("-o,--output", o->output, "table or json")->capture_default_str();
  app.add_option("--bandwidth-gbs", o->bandwidth_gbs,
                 "memory bandwidth (GB/s) the tg speeds are compared with; default: the device's "
                 "peak");
  app.add_flag_callback(
      "--json", [o] { o->output = "json"; }, "print JSON (same as -o json)");
  return [o] { return run_bench(*o); };
}

const bool registered =
    register_command({"bench", "measure prompt processing and generation speed (tokens/s)", setup});

}  // namespace
}  // namespace torchless::app
