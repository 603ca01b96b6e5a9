// The Metal self-test (metal_selftest.h): each op on the Metal backend against the CPU backend,
// and, with --compile-only, every pipeline of the library without running anything.
#include "torchless/backends/metal/metal_selftest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "torchless/backends/backend.h"
#include "torchless/core/error.h"
#include "torchless/core/quant.h"

#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_hardware_probes.h"
#include "torchless/backends/metal/metal_weight_types.h"

namespace torchless::metal {
namespace {

constexpr int kExitUnavailable = kSelftestUnavailable;

struct CheckResult {
  std::string name;
  bool passed = false;
  double error = 0.0;  // max |metal - cpu| / max |cpu|
  double tolerance = 0.0;
  std::string note;  // the exception text when the check threw
};

using Outputs = std::pair<std::vector<float>, std::vector<float>>;  // (metal, cpu)

class MetalSelftest {
 public:
  MetalSelftest(Backend& metal, Backend& cpu, uint64_t seed, std::string filter)
      : metal_(metal), cpu_(cpu), rng_(seed), filter_(std::move(filter)) {}

  void run_all() {
    emulator_assumptions();
    compile_pipelines();
    row_ops();
    elementwise_ops();
    rope_ops();
    for (DType dtype : kWeightTypes) linear_ops(dtype);
    embedding_ops();
    attention_ops();
  }

  // Prints the table; returns the number of failed checks.
  int report() const {
    int failed = 0;
    fmt::print("{:<64} {:<6} {:>10} {:>10}\n", "check", "result", "error", "tolerance");
    for (const CheckResult& r : results_) {
      failed += r.passed ? 0 : 1;
      fmt::print("{:<64} {:<6} {:>10.2e} {:>10.1e}{}\n", r.name, r.passed ? "pass" : "FAIL",
                 r.error, r.tolerance, r.note.empty() ? "" : "  " + r.note);
    }
    fmt::print("{} of {} checks passed\n", results_.size() - failed, results_.size());
    return failed;
  }

 private:
  // Runs one check, recording an exception as a failure so the remaining checks still run.
  void check(std::string name, double tolerance, const std::function<Outputs()>& run) {
    if (name.find(filter_) == std::string::npos) return;
    CheckResult result{std::move(name), false, 0.0, tolerance, {}};
    try {
      const Outputs out = run();
      result.error = normalised_error(out.first, out.second);
      result.passed = result.error <= tolerance;
    } catch (const std::exception& e) {
      result.error = INFINITY;
      result.note = e.what();
    }
    results_.push_back(std::move(result));
  }

  static double normalised_error(const std::vector<float>& got, const std::vector<float>& want) {
    if (got.size() != want.size()) return INFINITY;
    double max_diff = 0.0;
    double max_ref = 0.0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (!std::isfinite(got[i]) && got[i] != want[i]) return INFINITY;
      if (std::isfinite(want[i])) {
        max_diff = std::max(max_diff, std::fabs(double{got[i]} - double{want[i]}));
        max_ref = std::max(max_ref, std::fabs(double{want[i]}));
      }
    }
    return max_diff / std::max(max_ref, 1e-6);
  }

  std::vector<float> random(size_t n, float scale) {
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng_);
    return v;
  }

  static Tensor upload(Backend& backend, const Shape& shape, std::span<const float> values) {
    Tensor t = backend.alloc(shape, DType::F32);
    backend.upload(std::as_bytes(values), t);
    return t;
  }

  // Host bytes of a [rows, cols] weight matrix in `dtype`, kept alive for the run: to_device
  // wraps host memory without a copy where it can.
  const std::vector<std::byte>& encode(DType dtype, const std::vector<float>& values, int64_t rows,
                                       int64_t cols) {
    const size_t row_bytes = dtype_row_bytes(dtype, cols);
    std::vector<std::byte>& bytes = host_bytes_.emplace_back(row_bytes * rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = values.data() + r * cols;
      std::byte* dst = bytes.data() + r * row_bytes;
      if (dtype == DType::F32) {
        std::memcpy(dst, src, row_bytes);
      } else {
        quantize_row(dtype, src, dst, cols);
      }
    }
    return bytes;
  }

  static Tensor weight(Backend& backend, DType dtype, int64_t rows, int64_t cols,
                       const std::vector<std::byte>& bytes) {
    return backend.to_device(HostTensorView{Shape{rows, cols}, dtype, bytes.data(), bytes.size()});
  }

  bool both_support(DType dtype) const {
    return metal_.supports_weight_dtype(dtype) && cpu_.supports_weight_dtype(dtype) &&
           (dtype == DType::F32 || can_quantize(dtype));
  }

  void emulator_assumptions();
  void compile_pipelines();
  void row_ops();
  void elementwise_ops();
  void rope_ops();
  void linear_ops(DType dtype);
  void embedding_ops();
  void attention_ops();

  Backend& metal_;
  Backend& cpu_;
  std::mt19937 rng_;
  std::string filter_;  // run only the checks whose name contains it
  std::deque<std::vector<std::byte>> host_bytes_;
  std::vector<CheckResult> results_;
};

// Every `kernel void name(` of the embedded shader source becomes a pipeline: a kernel that
// does not compile on this GPU fails here by name, with the compiler's message.
// First, because every emulated kernel test in CI relies on them: what the GPU does where the
// MSL emulator had to assume (simdgroup_load's origin, simdgroup_matrix(T), the top lanes of
// simd_shuffle_down). A failure here means the emulator, not the kernel, needs fixing.
void MetalSelftest::emulator_assumptions() {
  auto* backend = dynamic_cast<MetalBackend*>(&metal_);
  if (backend == nullptr || std::string("assumption").find(filter_) == std::string::npos) return;
  try {
    for (const metal::ProbeOutcome& o :
         metal::probe_emulator_assumptions(backend->metal_device())) {
      results_.push_back({"assumption: " + o.assumption, o.holds, o.holds ? 0.0 : INFINITY, 0.0,
                          o.holds ? "" : o.observed + " (please report: the emulator differs)"});
    }
  } catch (const std::exception& e) {
    results_.push_back({"assumption probes", false, INFINITY, 0.0, e.what()});
  }
}

void MetalSelftest::compile_pipelines() {
  auto* backend = dynamic_cast<MetalBackend*>(&metal_);
  if (backend == nullptr) return;
  for (const std::string& name : backend->metal_device().kernel_names()) {
    if (!MetalBackend::uses_kernel(backend->metal_device().info(), name)) {
      results_.push_back({"pipeline " + name, true, 0.0, 0.0, "skipped: not used on this GPU"});
      continue;
    }
    check("pipeline " + name, 0.0, [&] {
      const metal::MetalPipeline& p = backend->metal_device().pipeline(name);
      if (p.max_total_threads_per_threadgroup() == 0) fail("no threads");
      return Outputs{};
    });
  }
}

void MetalSelftest::row_ops() {
  const int64_t rows = 5, cols = 1031;
  const std::vector<float> x = random(rows * cols, 8.0f);
  check("softmax [5, 1031]", 1e-5, [&] {
    auto run = [&](Backend& b) {
      Tensor t = upload(b, Shape{rows, cols}, x);
      b.softmax(t);
      return b.to_host_f32(t);
    };
    return Outputs{run(metal_), run(cpu_)};
  });
  const int64_t norm_cols = 4097;
  const std::vector<float> y = random(3 * norm_cols, 3.0f);
  const std::vector<float> w = random(norm_cols, 1.5f);
  check("rmsnorm [3, 4097]", 1e-5, [&] {
    auto run = [&](Backend& b) {
      Tensor t = upload(b, Shape{3, norm_cols}, y);
      const Tensor weight = upload(b, Shape{norm_cols}, w);
      b.rmsnorm(t, weight, t, 1e-5f);
      return b.to_host_f32(t);
    };
    return Outputs{run(metal_), run(cpu_)};
  });
}

void MetalSelftest::elementwise_ops() {
  const int64_t rows = 4, cols = 1111;
  const std::vector<float> a = random(rows * cols, 6.0f);
  const std::vector<float> b = random(rows * cols, 6.0f);
  const std::vector<float> bias = random(cols, 2.0f);
  check("silu [4, 1111]", 1e-5, [&] {
    auto run = [&](Backend& be) {
      Tensor t = upload(be, Shape{rows, cols}, a);
      be.silu(t);
      return be.to_host_f32(t);
    };
    return Outputs{run(metal_), run(cpu_)};
  });
  check("fused_silu_mul [4, 1111]", 1e-5, [&] {
    auto run = [&](Backend& be) {
      const Tensor gate = upload(be, Shape{rows, cols}, a);
      const Tensor up = upload(be, Shape{rows, cols}, b);
      Tensor out = be.alloc(Shape{rows, cols}, DType::F32);
      be.fused_silu_mul(gate, up, out);
      return be.to_host_f32(out);
    };
    return Outputs{run(metal_), run(cpu_)};
  });
  check("add [4, 1111] + row broadcast", 1e-6, [&] {
    auto run = [&](Backend& be) {
      const Tensor x = upload(be, Shape{rows, cols}, a);
      const Tensor y = upload(be, Shape{rows, cols}, b);
      const Tensor row = upload(be, Shape{cols}, bias);
      Tensor sum = be.alloc(Shape{rows, cols}, DType::F32);
      Tensor out = be.alloc(Shape{rows, cols}, DType::F32);
      be.add(x, y, sum);
      be.add(sum, row, out);
      return be.to_host_f32(out);
    };
    return Outputs{run(metal_), run(cpu_)};
  });
}

void MetalSelftest::rope_ops() {
  const int n_tokens = 3, n_heads = 5, head_dim = 64;
  const std::vector<float> x = random(n_tokens * n_heads * head_dim, 2.0f);
  std::vector<float> inv_freq(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / head_dim));
  }
  for (bool neox : {false, true}) {
    check(fmt::format("rope {} [3, 5 x 64] from pos 11", neox ? "neox" : "normal"), 1e-5, [&] {
      auto run = [&](Backend& b) {
        Tensor t = upload(b, Shape{n_tokens, n_heads * head_dim}, x);
        const Tensor freq = upload(b, Shape{head_dim / 2}, inv_freq);
        b.rope(t, freq, RopeParams{n_heads, head_dim, 11, neox});
        return b.to_host_f32(t);
      };
      return Outputs{run(metal_), run(cpu_)};
    });
  }
}

// matmul_vec and matmul (prompt batches of 13 tokens) for one weight dtype. K = 768 is a whole
// number of every block size; 67 rows is a multiple of no tile.
void MetalSelftest::linear_ops(DType dtype) {
  const std::string type(dtype_name(dtype));
  if (!both_support(dtype)) {
    results_.push_back({"matmul " + type, true, 0.0, 0.0, "skipped: not supported here"});
    return;
  }
  const int64_t rows = 67, cols = 768, tokens = 13;
  const std::vector<std::byte>& bytes = encode(dtype, random(rows * cols, 1.0f), rows, cols);
  const std::vector<float> x = random(tokens * cols, 1.0f);
  // CPU and Metal may both quantise activations or not; weights are identical bytes.
  const double tolerance = dtype == DType::F32 || dtype == DType::F16 ? 1e-4 : 2e-2;
  check(fmt::format("matmul_vec {} [67 x 768]", type), tolerance, [&] {
    auto run = [&](Backend& b) {
      const Tensor w = weight(b, dtype, rows, cols, bytes);
      const Tensor v = upload(b, Shape{cols}, std::span(x).first(cols));
      Tensor y = b.alloc(Shape{rows}, DType::F32);
      b.matmul_vec(w, v, y);
      return b.to_host_f32(y);
    };
    return Outputs{run(metal_), run(cpu_)};
  });
  check(fmt::format("matmul {} [13 x 768] x [67 x 768]^T", type), tolerance, [&] {
    auto run = [&](Backend& b) {
      const Tensor w = weight(b, dtype, rows, cols, bytes);
      const Tensor v = upload(b, Shape{tokens, cols}, x);
      Tensor y = b.alloc(Shape{tokens, rows}, DType::F32);
      b.matmul(w, v, y);
      return b.to_host_f32(y);
    };
    return Outputs{run(metal_), run(cpu_)};
  });
  auto* backend = dynamic_cast<MetalBackend*>(&metal_);
  if (dtype != DType::F32 || backend == nullptr) return;
  check("matmul_vec_tiled f32 [67 x 768]", 1e-4, [&] {
    const Tensor w = weight(*backend, dtype, rows, cols, bytes);
    const Tensor v = upload(*backend, Shape{cols}, std::span(x).first(cols));
    Tensor y = backend->alloc(Shape{rows}, DType::F32);
    backend->matmul_vec_tiled(w, v, y);
    const Tensor wc = weight(cpu_, dtype, rows, cols, bytes);
    const Tensor vc = upload(cpu_, Shape{cols}, std::span(x).first(cols));
    Tensor yc = cpu_.alloc(Shape{rows}, DType::F32);
    cpu_.matmul_vec(wc, vc, yc);
    return Outputs{backend->to_host_f32(y), cpu_.to_host_f32(yc)};
  });
}

void MetalSelftest::embedding_ops() {
  const int64_t vocab = 50, dim = 96;
  const std::vector<int32_t> ids = {3, 49, 0, 17, 17, 8, 31};
  for (DType dtype : {DType::F32, DType::Q8_0}) {
    if (!both_support(dtype)) continue;
    const std::vector<std::byte>& bytes = encode(dtype, random(vocab * dim, 1.0f), vocab, dim);
    check(fmt::format("embedding {} [50 x 96], 7 ids", dtype_name(dtype)), 1e-6, [&] {
      auto run = [&](Backend& b) {
        const Tensor table = weight(b, dtype, vocab, dim, bytes);
        Tensor id = b.alloc(Shape{static_cast<int64_t>(ids.size())}, DType::I32);
        b.upload(std::as_bytes(std::span(ids)), id);
        Tensor out = b.alloc(Shape{static_cast<int64_t>(ids.size()), dim}, DType::F32);
        b.embedding(table, id, out);
        return b.to_host_f32(out);
      };
      return Outputs{run(metal_), run(cpu_)};
    });
  }
}

// KV store, the spec's attention primitives (one decode token) and the fused attention for a
// decode token and a prefill chunk, with grouped-query heads and a sliding window.
void MetalSelftest::attention_ops() {
  const int n_heads = 4, n_kv_heads = 2, head_dim = 32, n_ctx = 40;
  const int kv_cols = n_kv_heads * head_dim;
  const std::vector<float> k = random(n_ctx * kv_cols, 1.0f);
  const std::vector<float> v = random(n_ctx * kv_cols, 1.0f);
  const std::vector<float> q = random(5 * n_heads * head_dim, 1.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (DType cache_type : {DType::F32, DType::F16}) {
    // Fills rows [0, filled) of both caches through kv_store, as the model does.
    auto caches = [&](Backend& b, int filled) {
      Tensor kc = b.alloc(Shape{n_ctx, kv_cols}, cache_type);
      Tensor vc = b.alloc(Shape{n_ctx, kv_cols}, cache_type);
      const Tensor ks = upload(b, Shape{filled, kv_cols}, std::span(k).first(filled * kv_cols));
      const Tensor vs = upload(b, Shape{filled, kv_cols}, std::span(v).first(filled * kv_cols));
      b.kv_store(ks, kc, 0);
      b.kv_store(vs, vc, 0);
      b.synchronize();  // the sources may be freed on return
      return std::pair{kc, vc};
    };
    const std::string type(dtype_name(cache_type));
    const double tolerance = cache_type == DType::F32 ? 1e-4 : 2e-3;
    const AttentionParams decode{1, 23, n_heads, n_kv_heads, head_dim, 0, scale};
    check("attention_scores+softmax+weighted_sum " + type, tolerance, [&] {
      auto run = [&](Backend& b) {
        auto [kc, vc] = caches(b, decode.pos0 + 1);
        const Tensor qt =
            upload(b, Shape{1, n_heads * head_dim}, std::span(q).first(n_heads * head_dim));
        Tensor scores = b.alloc(Shape{n_heads, decode.pos0 + 1}, DType::F32);
        Tensor out = b.alloc(Shape{n_heads * head_dim}, DType::F32);
        b.attention_scores(qt, kc, scores, decode);
        b.softmax(scores);
        b.weighted_sum(scores, vc, out, decode);
        return b.to_host_f32(out);
      };
      return Outputs{run(metal_), run(cpu_)};
    });
    for (const AttentionParams& p :
         {decode, AttentionParams{1, 31, n_heads, n_kv_heads, head_dim, 8, scale},
          AttentionParams{5, 3, n_heads, n_kv_heads, head_dim, 0, scale}}) {
      check(fmt::format("attention {} tokens={} pos0={} window={}", type, p.n_tokens, p.pos0,
                        p.window),
            tolerance, [&] {
              auto run = [&](Backend& b) {
                auto [kc, vc] = caches(b, p.pos0 + p.n_tokens);
                const int64_t q_cols = int64_t{n_heads} * head_dim;
                const Tensor qt =
                    upload(b, Shape{p.n_tokens, q_cols}, std::span(q).first(p.n_tokens * q_cols));
                Tensor out = b.alloc(Shape{p.n_tokens, q_cols}, DType::F32);
                b.attention(qt, kc, vc, out, p);
                return b.to_host_f32(out);
              };
              return Outputs{run(metal_), run(cpu_)};
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
