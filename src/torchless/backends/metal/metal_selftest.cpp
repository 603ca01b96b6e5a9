// The Metal self-test (metal_selftest.h): the backend conformance cases (conformance_cases.h)
// on the Metal backend against the CPU backend, and, with --compile-only, every pipeline of the
// library without running anything.
#include "torchless/backends/metal/metal_selftest.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "torchless/backends/backend.h"
#include "torchless/backends/conformance_cases.h"
#include "torchless/core/error.h"

#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_hardware_probes.h"

namespace torchless::metal {
namespace {

using conformance::AttentionCase;
using conformance::RopeCase;
using conformance::Shape2;

constexpr int kExitUnavailable = kSelftestUnavailable;

struct CheckResult {
  std::string name;
  bool passed = false;
  double error = 0.0;  // worst |metal - cpu| as a fraction of its bound (pass: <= 1)
  std::string note;    // the exception text when the check threw
};

// One op's outputs on both backends, and the bound of |metal - cpu| per element (or one for
// all): the sum of the two backends' conformance bounds against the exact result, with the CPU
// result standing in for the exact one.
struct Compared {
  std::vector<float> metal, cpu;
  std::vector<double> bound;
};

// The conformance bound `tol` of each backend, doubled: both may err by it, in opposite ways.
std::vector<double> twice(std::vector<double> tol) {
  for (double& t : tol) t *= 2.0;
  return tol;
}

std::vector<double> as_doubles(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

class MetalSelftest {
 public:
  MetalSelftest(Backend& metal, Backend& cpu, uint64_t seed, std::string filter)
      : metal_(metal),
        cpu_(cpu),
        seed_(seed),
        filter_(std::move(filter)),
        sizes_(conformance::sizes_for(metal.name())) {}

  void run_all() {
    emulator_assumptions();
    compile_pipelines();
    row_ops();
    elementwise_ops();
    rope_ops();
    for (DType dtype : conformance::weight_types(metal_)) linear_ops(dtype);
    embedding_ops();
    kv_store_ops();
    attention_ops();
  }

  // Prints the table; returns the number of failed checks.
  int report() const {
    int failed = 0;
    fmt::print("{:<64} {:<6} {:>10}\n", "check", "result", "error/bound");
    for (const CheckResult& r : results_) {
      failed += r.passed ? 0 : 1;
      fmt::print("{:<64} {:<6} {:>10.2e}{}\n", r.name, r.passed ? "pass" : "FAIL", r.error,
                 r.note.empty() ? "" : "  " + r.note);
    }
    fmt::print("{} of {} checks passed\n", results_.size() - failed, results_.size());
    return failed;
  }

 private:
  // Runs one check, recording an exception as a failure so the remaining checks still run.
  void check(std::string name, const std::function<Compared()>& run) {
    if (name.find(filter_) == std::string::npos) return;
    CheckResult result{std::move(name), false, 0.0, {}};
    try {
      result.error = worst_ratio(run());
      result.passed = result.error <= 1.0;
    } catch (const std::exception& e) {
      result.error = INFINITY;
      result.note = e.what();
    }
    results_.push_back(std::move(result));
  }

  // Runs `op` on both backends.
  template <typename Op>
  void compare(std::string name,
               const std::function<std::vector<double>(const std::vector<float>&)>& bound,
               const Op& op) {
    check(std::move(name), [&] {
      Compared c{op(metal_), op(cpu_), {}};
      c.bound = bound(c.cpu);
      return c;
    });
  }

  static double worst_ratio(const Compared& c) {
    if (c.metal.size() != c.cpu.size() || c.bound.empty()) return INFINITY;
    double worst = 0.0;
    for (size_t i = 0; i < c.metal.size(); ++i) {
      const double got = c.metal[i], want = c.cpu[i];
      if (got == want) continue;  // also equal infinities (masked scores)
      const double diff = std::fabs(got - want);
      if (!std::isfinite(diff)) return INFINITY;
      worst = std::max(worst, diff / c.bound[c.bound.size() == 1 ? 0 : i]);
    }
    return worst;
  }

  // The seed of a case: the conformance suite's, moved by --seed.
  uint64_t seed(uint64_t case_seed) const { return seed_ + case_seed; }

  void emulator_assumptions();
  void compile_pipelines();
  void row_ops();
  void elementwise_ops();
  void rope_ops();
  void linear_ops(DType dtype);
  void embedding_ops();
  void kv_store_ops();
  void attention_ops();

  Backend& metal_;
  Backend& cpu_;
  uint64_t seed_;
  std::string filter_;  // run only the checks whose name contains it
  const conformance::Sizes& sizes_;
  std::vector<CheckResult> results_;
};

// First, because every emulated kernel test in CI relies on them: what the GPU does where the
// MSL emulator had to assume (simdgroup_load's origin, simdgroup_matrix(T), the top lanes of
// simd_shuffle_down). A failure here means the emulator, not the kernel, needs fixing.
void MetalSelftest::emulator_assumptions() {
  auto* backend = dynamic_cast<MetalBackend*>(&metal_);
  if (backend == nullptr || std::string("assumption").find(filter_) == std::string::npos) return;
  try {
    for (const metal::ProbeOutcome& o :
         metal::probe_emulator_assumptions(backend->metal_device())) {
      results_.push_back({"assumption: " + o.assumption, o.holds, o.holds ? 0.0 : INFINITY,
                          o.holds ? "" : o.observed + " (please report: the emulator differs)"});
    }
  } catch (const std::exception& e) {
    results_.push_back({"assumption probes", false, INFINITY, e.what()});
  }
}

// Every kernel the device's library names becomes a pipeline: a kernel that does not compile on
// this GPU fails here by name, with the compiler's message.
void MetalSelftest::compile_pipelines() {
  auto* backend = dynamic_cast<MetalBackend*>(&metal_);
  if (backend == nullptr) return;
  for (const std::string& name : backend->metal_device().kernel_names()) {
    if (!MetalBackend::uses_kernel(backend->metal_device().info(), name)) {
      results_.push_back({"pipeline " + name, true, 0.0, "skipped: not used on this GPU"});
      continue;
    }
    check("pipeline " + name, [&] {
      const metal::MetalPipeline& p = backend->metal_device().pipeline(name);
      if (p.max_total_threads_per_threadgroup() == 0) fail("no threads");
      return Compared{{}, {}, {0.0}};
    });
  }
}

// The row-wise ops over the conformance row lengths, one row and three.
void MetalSelftest::row_ops() {
  using conformance::kRowRel;
  using conformance::tolerance;
  for (int64_t cols : sizes_.row_lengths) {
    for (int64_t rows : {1, 3}) {
      const auto x = conformance::random_floats(static_cast<size_t>(rows * cols),
                                                seed(100 + cols * 3 + rows), -3.0f, 3.0f);
      const auto w = conformance::random_floats(static_cast<size_t>(cols),
                                                seed(101 + cols * 3 + rows), 0.5f, 1.5f);
      compare(
          fmt::format("rmsnorm [{}, {}]", rows, cols),
          [](const auto& cpu) { return twice(tolerance(as_doubles(cpu), 1e-7, kRowRel)); },
          [&](Backend& b) {
            Tensor t = conformance::upload_f32(b, x, Shape{rows, cols});
            b.rmsnorm(t, conformance::upload_f32(b, w, Shape{cols}), t, 1e-5f);
            return b.to_host_f32(t);
          });
      compare(
          fmt::format("softmax [{}, {}]", rows, cols),
          [](const auto& cpu) { return twice(tolerance(as_doubles(cpu), 1e-8, kRowRel)); },
          [&](Backend& b) {
            Tensor t = conformance::upload_f32(b, x, Shape{rows, cols});
            b.softmax(t);
            return b.to_host_f32(t);
          });
    }
  }
}

void MetalSelftest::elementwise_ops() {
  using conformance::kRowRel;
  using conformance::tolerance;
  const auto bound = [](const auto& cpu) {
    return twice(tolerance(as_doubles(cpu), 1e-7, kRowRel));
  };
  for (int64_t n : sizes_.row_lengths) {
    const auto g = conformance::random_floats(static_cast<size_t>(3 * n), seed(500 + n), -10, 10);
    const auto u = conformance::random_floats(static_cast<size_t>(3 * n), seed(501 + n), -2, 2);
    const auto bias = conformance::random_floats(static_cast<size_t>(n), seed(602 + n));
    compare(fmt::format("silu [3, {}]", n), bound, [&](Backend& b) {
      Tensor t = conformance::upload_f32(b, g, Shape{3, n});
      b.silu(t);
      return b.to_host_f32(t);
    });
    compare(fmt::format("fused_silu_mul [3, {}]", n), bound, [&](Backend& b) {
      Tensor gate = conformance::upload_f32(b, g, Shape{3, n});
      b.fused_silu_mul(gate, conformance::upload_f32(b, u, Shape{3, n}), gate);
      return b.to_host_f32(gate);
    });
    compare(fmt::format("add [3, {}] + bias", n), bound, [&](Backend& b) {
      const Tensor x = conformance::upload_f32(b, g, Shape{3, n});
      Tensor out = b.alloc(Shape{3, n}, DType::F32);
      b.add(x, conformance::upload_f32(b, u, Shape{3, n}), out);
      b.add(out, conformance::upload_f32(b, bias, Shape{n}), out);
      return b.to_host_f32(out);
    });
  }
}

void MetalSelftest::rope_ops() {
  for (const RopeCase& c : sizes_.rope) {
    for (bool neox : {false, true}) {
      const int64_t width = int64_t{c.n_heads} * c.head_dim;
      const auto x = conformance::random_floats(static_cast<size_t>(c.n_tokens * width),
                                                seed(700 + c.head_dim * 10 + c.pos0 + neox));
      const auto freq = conformance::rope_frequencies(c.head_dim, 10000.0);
      compare(
          fmt::format("rope {} [{} x {} x {}] from pos {}", neox ? "neox" : "normal", c.n_tokens,
                      c.n_heads, c.head_dim, c.pos0),
          [&](const auto&) { return std::vector<double>{2.0 * conformance::rope_tolerance(c)}; },
          [&](Backend& b) {
            Tensor t = conformance::upload_f32(b, x, Shape{c.n_tokens, width});
            b.rope(t, conformance::upload_f32(b, freq, Shape{c.head_dim / 2}),
                   RopeParams{c.n_heads, c.head_dim, c.pos0, neox});
            return b.to_host_f32(t);
          });
    }
  }
}

// matmul_vec over every conformance shape of the dtype, matmul over its batch sizes (the
// second and third shapes, as the conformance suite), and for F32 the tiled mat-vec.
void MetalSelftest::linear_ops(DType dtype) {
  const std::string type(dtype_name(dtype));
  if (!cpu_.supports_weight_dtype(dtype)) {
    results_.push_back({"matmul " + type, true, 0.0, "skipped: the CPU backend lacks it"});
    return;
  }
  const std::vector<Shape2>& shapes = conformance::shapes_for(dtype, sizes_);
  auto run = [&](int64_t rows, int64_t cols, int64_t n, bool tiled) {
    const uint64_t s = seed(conformance::matmul_seed(dtype, rows, cols, n));
    const std::string name = fmt::format("{} {} [{} x {}] x {}",
                                         tiled    ? "matmul_vec_tiled"
                                         : n == 1 ? "matmul_vec"
                                                  : "matmul",
                                         type, rows, cols, n);
    check(name, [&] {
      const auto x = conformance::random_floats(static_cast<size_t>(n * cols), s + 1);
      Compared c;
      for (Backend* b : {&metal_, &cpu_}) {
        const conformance::Weights w = conformance::make_weights(*b, dtype, rows, cols, s);
        const Tensor xt = conformance::upload_f32(*b, x, n == 1 ? Shape{cols} : Shape{n, cols});
        Tensor y = b->alloc(n == 1 ? Shape{rows} : Shape{n, rows}, DType::F32);
        auto* metal = dynamic_cast<MetalBackend*>(b);
        if (tiled && metal != nullptr) {
          metal->matmul_vec_tiled(w.tensor, xt, y);
        } else if (n == 1) {
          b->matmul_vec(w.tensor, xt, y);
        } else {
          b->matmul(w.tensor, xt, y);
        }
        (b == &metal_ ? c.metal : c.cpu) = b->to_host_f32(y);
        if (b == &cpu_) {
          c.bound = twice(conformance::matmul_tolerance(w.values, x, rows, cols, n,
                                                        conformance::activation_block(dtype)));
        }
      }
      return c;
    });
  };
  const bool has_tiled = dtype == DType::F32 && dynamic_cast<MetalBackend*>(&metal_) != nullptr;
  for (const Shape2& s : shapes) {
    run(s.rows, s.cols, 1, false);
    if (has_tiled) run(s.rows, s.cols, 1, true);
  }
  for (int64_t n : sizes_.batch_tokens) {
    for (size_t i = 1; i < std::min<size_t>(shapes.size(), 3); ++i) {
      run(shapes[i].rows, shapes[i].cols, n, false);
    }
  }
}

void MetalSelftest::embedding_ops() {
  const std::vector<int32_t> ids(std::begin(conformance::kEmbeddingIds),
                                 std::end(conformance::kEmbeddingIds));
  const auto n = static_cast<int64_t>(ids.size());
  for (DType dtype : conformance::weight_types(metal_)) {
    if (!cpu_.supports_weight_dtype(dtype)) continue;
    const int64_t dim = conformance::embedding_dim(dtype);
    compare(
        fmt::format("embedding {} [{} x {}], {} ids", dtype_name(dtype),
                    conformance::kEmbeddingVocab, dim, n),
        [](const auto& cpu) { return twice(conformance::tolerance(as_doubles(cpu), 1e-7, 1e-6)); },
        [&](Backend& b) {
          const conformance::Weights table =
              conformance::make_weights(b, dtype, conformance::kEmbeddingVocab, dim,
                                        seed(800 + static_cast<uint64_t>(dtype)));
          Tensor idt = b.alloc(Shape{n}, DType::I32);
          b.upload(std::as_bytes(std::span(ids)), idt);
          Tensor out = b.alloc(Shape{n, dim}, DType::F32);
          b.embedding(table.tensor, idt, out);
          return b.to_host_f32(out);
        });
  }
}

// kv_store into F32 and F16 caches: exact on both (F16 rounds to nearest even), as in the
// conformance suite.
void MetalSelftest::kv_store_ops() {
  const int64_t cols = 3 * 33;
  const auto first =
      conformance::random_floats(static_cast<size_t>(4 * cols), seed(1000), -300, 300);
  const auto second = conformance::random_floats(static_cast<size_t>(cols), seed(1001), -300, 300);
  for (DType dtype : {DType::F32, DType::F16}) {
    compare(
        fmt::format("kv_store {} [4 + 1 rows of {}] into [10, {}]", dtype_name(dtype), cols, cols),
        [](const auto&) { return std::vector<double>{1e-30}; },
        [&](Backend& b) {
          Tensor cache = b.alloc(Shape{10, cols}, dtype);
          b.upload(std::vector<std::byte>(cache.nbytes()), cache);  // Metal's alloc is not zeroed
          b.kv_store(conformance::upload_f32(b, first, Shape{4, cols}), cache, 2);
          b.kv_store(conformance::upload_f32(b, second, Shape{1, cols}), cache, 9);
          return b.to_host_f32(cache);
        });
  }
}

// The conformance attention cases over F32, F16 and (where head_dim allows) Q8_0 caches: the
// fused op, and for one-token
// cases the spec's primitives (attention_scores, softmax, weighted_sum) in a chain.
void MetalSelftest::attention_ops() {
  const auto bound = [](const auto&) {
    return std::vector<double>{2.0 * conformance::kAttentionAbs};
  };
  for (const AttentionCase& c : sizes_.attention) {
    for (DType kv : conformance::kv_types(metal_, c)) {
      const AttentionParams p = conformance::params_of(c);
      const int64_t width = int64_t{c.n_heads} * c.head_dim;
      const int64_t kv_width = int64_t{c.n_kv_heads} * c.head_dim;
      const int64_t rows = c.pos0 + c.n_tokens;
      const uint64_t s = seed(2000 + c.pos0 * 13 + c.n_tokens * 7 + c.head_dim);
      const auto q = conformance::random_floats(static_cast<size_t>(c.n_tokens * width), s);
      const std::string what =
          fmt::format("{} heads {}/{} dim {} tokens {} pos0 {} window {}", dtype_name(kv),
                      c.n_heads, c.n_kv_heads, c.head_dim, c.n_tokens, c.pos0, c.window);
      compare("attention " + what, bound, [&](Backend& b) {
        const conformance::Cache k = conformance::make_cache(b, kv, rows, kv_width, s + 1);
        const conformance::Cache v = conformance::make_cache(b, kv, rows, kv_width, s + 2);
        Tensor out = b.alloc(Shape{c.n_tokens, width}, DType::F32);
        b.attention(conformance::upload_f32(b, q, Shape{c.n_tokens, width}), k.tensor, v.tensor,
                    out, p);
        return b.to_host_f32(out);
      });
      if (c.n_tokens != 1) continue;
      compare("attention_scores+softmax+weighted_sum " + what, bound, [&](Backend& b) {
        const conformance::Cache k = conformance::make_cache(b, kv, rows, kv_width, s + 1);
        const conformance::Cache v = conformance::make_cache(b, kv, rows, kv_width, s + 2);
        Tensor scores = b.alloc(Shape{c.n_heads, rows}, DType::F32);
        Tensor out = b.alloc(Shape{width}, DType::F32);
        b.attention_scores(conformance::upload_f32(b, q, Shape{width}), k.tensor, scores, p);
        b.softmax(scores);
        b.weighted_sum(scores, v.tensor, out, p);
        return b.to_host_f32(out);
      });
    }
  }
}

// The Metal backend to test, or nullptr (with the reason printed) when there is none.
std::unique_ptr<Backend> open_metal(bool emulated) {
  const std::string wanted = emulated ? "metal-emulated" : "metal";
  for (const BackendInfo& info : discover_backends()) {
    if (info.name != wanted) continue;
    if (!info.available) {
      fmt::print("metal-selftest: {} is not available here: {}{}\n", wanted, info.detail,
                 emulated ? "" : " (--emulated checks the kernels on the CPU emulator instead)");
      return nullptr;
    }
    fmt::print("metal-selftest: {} on {}\n", wanted, info.detail);
    return init_backend(std::string_view(wanted));
  }
  fmt::print("metal-selftest: this build has no '{}' backend\n", wanted);
  return nullptr;
}

// The device without the family gate, or nullptr (with the reason printed, and the exit status
// in *status: 2 without a device, 1 when the library did not compile).
std::unique_ptr<metal::MetalDevice> open_ungated_device(bool emulated, int* status) {
  try {
    std::string reason;
    if (emulated && metal::emulated_metal_available(&reason)) {
      return metal::create_emulated_metal_device();
    }
    if (!emulated && metal::apple_metal_device_present()) {
      return metal::create_apple_metal_device(/*gate=*/false);
    }
    if (!emulated) metal::apple_metal_available(&reason);
    fmt::print("metal-selftest: no '{}' device here: {}\n", emulated ? "metal-emulated" : "metal",
               reason.empty() ? "no Metal GPU" : reason);
    *status = kExitUnavailable;
  } catch (const std::exception& e) {
    // The library is compiled when the device is created: a shader error ends up here.
    fmt::print("metal-selftest: {}\n", e.what());
    *status = 1;
  }
  return nullptr;
}

// Compiles the library and every kernel's pipeline; runs nothing. Kernels that the backend
// never uses on this GPU are compiled too (a paravirtual GPU may refuse them): their failures
// are shown but do not count.
int run_compile_only(bool emulated) {
  int status = 0;
  std::unique_ptr<metal::MetalDevice> device = open_ungated_device(emulated, &status);
  if (device == nullptr) return status;
  const metal::MetalDeviceInfo& info = device->info();
  fmt::print("device: {} (SIMD width {}, {}, {} memory)\nlibrary: compiled\n", info.name,
             info.simd_width, info.apple_gpu ? "Apple GPU" : "not an Apple GPU",
             info.unified_memory ? "unified" : "discrete");
  int failed = 0;
  int compiled = 0;
  for (const std::string& name : device->kernel_names()) {
    const bool used = MetalBackend::uses_kernel(info, name);
    try {
      const metal::MetalPipeline& p = device->pipeline(name);
      fmt::print(
          "pipeline {:<48} pass   {} threads, SIMD width {}, {} bytes static threadgroup "
          "memory\n",
          name, p.max_total_threads_per_threadgroup(), p.thread_execution_width(),
          p.static_threadgroup_memory());
      ++compiled;
    } catch (const std::exception& e) {
      failed += used ? 1 : 0;
      fmt::print("pipeline {:<48} {}  {}\n", name,
                 used ? "FAIL" : "unused here, failed:", e.what());
    }
  }
  fmt::print("{} pipelines compiled, {} failed\n", compiled, failed);
  return failed == 0 && compiled > 0 ? 0 : 1;
}

int run_selftest(bool emulated, uint64_t seed, const std::string& filter) {
  std::unique_ptr<Backend> metal = open_metal(emulated);
  if (metal == nullptr) return kExitUnavailable;
  const DeviceInfo device = metal->device();
  fmt::print("device: {} ({} MiB, {} memory), seed {}\n", device.name, device.memory_bytes >> 20,
             device.unified_memory ? "unified" : "discrete", seed);
  std::unique_ptr<Backend> cpu = init_backend(BackendPreference::Cpu);
  MetalSelftest selftest(*metal, *cpu, seed, filter);
  selftest.run_all();
  return selftest.report() == 0 ? 0 : 1;
}

}  // namespace

int run_metal_selftest(const MetalSelftestOptions& options) {
  if (options.compile_only) return run_compile_only(options.emulated);
  return run_selftest(options.emulated, options.seed, options.filter);
}

}  // namespace torchless::metal
