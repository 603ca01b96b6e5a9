// Long passes are split into several command buffers (committed without waiting, waited for
// only at synchronize()/to_host()) so that no command buffer trips the macOS GPU watchdog.
// Checks: a prefill-shaped pass over a small model gives bit-identical results in one buffer
// and in many; the split follows the dispatch and thread limits (and their environment
// overrides); an error in an early-committed buffer surfaces at the next wait.
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include "metal_test_support.h"
#include "torchless/core/error.h"

namespace torchless::metal_test {
namespace {

// Sets (or unsets) an environment variable for one scope, restoring it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

constexpr const char* kDispatchEnv = "TORCHLESS_METAL_MAX_DISPATCHES_PER_BUFFER";
constexpr const char* kThreadEnv = "TORCHLESS_METAL_MAX_THREADS_PER_BUFFER";

struct PassResult {
  std::vector<float> out;
  uint64_t command_buffers = 0;
  uint64_t emulated_command_buffers = 0;
  uint64_t dispatches = 0;
};

// A prefill-shaped pass: 37 tokens through 3 pre-norm SwiGLU blocks with Q8_0 weights, read
// back once at the end.
PassResult run_prefill(MetalBackend& backend) {
  const int64_t tokens = 37, dim = 64, ffn = 96, layers = 3;
  Tensor x = upload_f32(backend, random_floats(size_t(tokens * dim), 100), Shape{tokens, dim});
  Tensor h = backend.alloc(Shape{tokens, dim}, DType::F32);
  Tensor gate = backend.alloc(Shape{tokens, ffn}, DType::F32);
  Tensor up = backend.alloc(Shape{tokens, ffn}, DType::F32);
  std::vector<Tensor> norms, w1, w3, w2;
  for (int64_t l = 0; l < layers; ++l) {
    const uint32_t seed = 200 + uint32_t(l) * 10;
    norms.push_back(upload_f32(backend, random_floats(size_t(dim), seed), Shape{dim}));
    const auto wg = random_floats(size_t(ffn * dim), seed + 1, 0.2f);
    const auto wu = random_floats(size_t(ffn * dim), seed + 2, 0.2f);
    const auto wd = random_floats(size_t(dim * ffn), seed + 3, 0.2f);
    w1.push_back(
        upload_bytes(backend, encode(wg, ffn, dim, DType::Q8_0), Shape{ffn, dim}, DType::Q8_0));
    w3.push_back(
        upload_bytes(backend, encode(wu, ffn, dim, DType::Q8_0), Shape{ffn, dim}, DType::Q8_0));
    w2.push_back(
        upload_bytes(backend, encode(wd, dim, ffn, DType::Q8_0), Shape{dim, ffn}, DType::Q8_0));
  }
  backend.synchronize();
  const metal::MetalBackendStats before = backend.stats();
  const uint64_t emulated_before = emulated(backend).counters().command_buffers;
  for (int64_t l = 0; l < layers; ++l) {
    const size_t i = size_t(l);
    backend.rmsnorm(x, norms[i], h, 1e-5f);
    backend.matmul(w1[i], h, gate);
    backend.matmul(w3[i], h, up);
    backend.fused_silu_mul(gate, up, gate);
    backend.matmul(w2[i], gate, h);
    backend.add(x, h, x);
  }
  PassResult r;
  r.out = backend.to_host_f32(x);
  const metal::MetalBackendStats after = backend.stats();
  r.command_buffers = after.command_buffers - before.command_buffers;
  r.dispatches = after.dispatches - before.dispatches;
  r.emulated_command_buffers = emulated(backend).counters().command_buffers - emulated_before;
  return r;
}

PassResult run_prefill_with(const char* max_dispatches, const char* max_threads) {
  const ScopedEnv d(kDispatchEnv, max_dispatches);
  const ScopedEnv t(kThreadEnv, max_threads);
  auto backend = make_backend(32);
  return run_prefill(*backend);
}

TEST(MetalCommandSplitTest, DefaultLimitsKeepOnePassInOneCommandBuffer) {
  const PassResult one = run_prefill_with(nullptr, nullptr);
  EXPECT_EQ(one.command_buffers, 1u);
  EXPECT_EQ(one.emulated_command_buffers, 1u);
  EXPECT_EQ(one.dispatches, 18u);
  for (float v : one.out) ASSERT_TRUE(std::isfinite(v));
}

TEST(MetalCommandSplitTest, DispatchLimitSplitsWithIdenticalResults) {
  const PassResult one = run_prefill_with(nullptr, nullptr);
  const PassResult split = run_prefill_with("4", nullptr);
  EXPECT_EQ(split.dispatches, one.dispatches);
  EXPECT_EQ(split.command_buffers, (one.dispatches + 3) / 4);
  EXPECT_EQ(split.emulated_command_buffers, split.command_buffers);
  ASSERT_EQ(split.out.size(), one.out.size());
  for (size_t i = 0; i < one.out.size(); ++i) ASSERT_EQ(split.out[i], one.out[i]) << i;
}

TEST(MetalCommandSplitTest, ThreadLimitSplitsEveryDispatchWithIdenticalResults) {
  const PassResult one = run_prefill_with(nullptr, nullptr);
  // Every dispatch launches more than one thread, so each gets its own command buffer.
  const PassResult split = run_prefill_with(nullptr, "1");
  EXPECT_EQ(split.command_buffers, split.dispatches);
  EXPECT_EQ(split.emulated_command_buffers, split.command_buffers);
  for (size_t i = 0; i < one.out.size(); ++i) ASSERT_EQ(split.out[i], one.out[i]) << i;
}

TEST(MetalCommandSplitTest, LimitsComeFromTheEnvironment) {
  {
    const ScopedEnv d(kDispatchEnv, nullptr);
    const ScopedEnv t(kThreadEnv, nullptr);
    const metal::RecorderLimits limits = metal::RecorderLimits::from_environment();
    EXPECT_EQ(limits.max_dispatches, metal::RecorderLimits::kDefaultMaxDispatches);
    EXPECT_EQ(limits.max_threads, metal::RecorderLimits::kDefaultMaxThreads);
  }
  {
    const ScopedEnv d(kDispatchEnv, "77");
    const ScopedEnv t(kThreadEnv, "12345");
    const metal::RecorderLimits limits = metal::RecorderLimits::from_environment();
    EXPECT_EQ(limits.max_dispatches, 77u);
    EXPECT_EQ(limits.max_threads, 12345u);
  }
  for (const char* bad : {"0", "-3", "12x", "lots"}) {
    const ScopedEnv d(kDispatchEnv, bad);
    EXPECT_THROW(metal::RecorderLimits::from_environment(), Error) << bad;
  }
}

// A device whose command buffers log commit/wait and whose first buffer fails.
struct FakeLog {
  std::vector<std::string> events;
  int created = 0;
};

class FakeBuffer final : public metal::MetalBuffer {
 public:
  std::byte* contents() const override { return nullptr; }
  size_t length() const override { return 1024; }
  void did_modify_range(size_t, size_t) override {}
};

class FakePipeline final : public metal::MetalPipeline {
 public:
  const std::string& name() const override { return name_; }
  uint32_t max_total_threads_per_threadgroup() const override { return 256; }
  uint32_t thread_execution_width() const override { return 32; }
  uint32_t static_threadgroup_memory() const override { return 0; }

 private:
  std::string name_ = "fake";
};

class FakeCommandBuffer final : public metal::MetalCommandBuffer {
 public:
  FakeCommandBuffer(FakeLog& log, int id) : log_(log), id_(id) {}
  void set_pipeline(const metal::MetalPipeline&) override {}
  void set_buffer(const metal::MetalBuffer&, size_t, size_t, uint32_t) override {}
  void set_bytes(const void*, size_t, uint32_t) override {}
  void set_threadgroup_memory(size_t, uint32_t) override {}
  void dispatch_threadgroups(metal::MetalSize, metal::MetalSize) override {}
  void memory_barrier() override {}
  void synchronize_for_host(const metal::MetalBuffer&) override {}
  void commit() override { log_.events.push_back("commit " + std::to_string(id_)); }
  void wait() override {
    log_.events.push_back("wait " + std::to_string(id_));
    if (id_ == 0) fail("command buffer {} failed", id_);
  }

 private:
  FakeLog& log_;
  int id_;
};

class FakeDevice final : public metal::MetalDevice {
 public:
  explicit FakeDevice(FakeLog& log) : log_(log) {}
  const metal::MetalDeviceInfo& info() const override { return info_; }
  std::shared_ptr<metal::MetalBuffer> new_buffer(size_t) override {
    return std::make_shared<FakeBuffer>();
  }
  std::shared_ptr<metal::MetalBuffer> wrap_host_memory(const void*, size_t) override {
    return std::make_shared<FakeBuffer>();
  }
  const metal::MetalPipeline& pipeline(std::string_view) override { return pipeline_; }
  std::vector<std::string> kernel_names() const override { return {}; }
  std::unique_ptr<metal::MetalCommandBuffer> new_command_buffer() override {
    return std::make_unique<FakeCommandBuffer>(log_, log_.created++);
  }

 private:
  FakeLog& log_;
  metal::MetalDeviceInfo info_;
  FakePipeline pipeline_;
};

TEST(MetalCommandSplitTest, EarlyCommittedErrorsSurfaceAtTheNextWait) {
  FakeLog log;
  FakeDevice device(log);
  auto buffer = device.new_buffer(1024);
  metal::MetalCommandRecorder recorder(device, metal::RecorderLimits{3, 1u << 20});
  const int args = 1;
  for (int i = 0; i < 7; ++i) {
    const metal::BufferArg arg{buffer, size_t(i) * 8, 8, true};
    recorder.dispatch(device.pipeline("fake"), &args, sizeof args, std::span(&arg, 1), 0, {2, 1, 1},
                      {32, 1, 1});
  }
  // 7 dispatches at 3 per buffer: two committed early, nothing waited for yet.
  EXPECT_EQ(log.events, (std::vector<std::string>{"commit 0", "commit 1"}));
  EXPECT_TRUE(recorder.pending());
  EXPECT_TRUE(recorder.uses(*buffer));
  EXPECT_TRUE(recorder.writes(*buffer));
  EXPECT_EQ(recorder.stats().threads, 7u * 64u);
  // Buffer 0's failure is reported, after every buffer was waited for.
  EXPECT_THROW(recorder.flush(), Error);
  EXPECT_EQ(log.events, (std::vector<std::string>{"commit 0", "commit 1", "commit 2", "wait 0",
                                                  "wait 1", "wait 2"}));
  EXPECT_FALSE(recorder.pending());
  EXPECT_FALSE(recorder.uses(*buffer));
  EXPECT_EQ(recorder.stats().command_buffers, 3u);
  EXPECT_EQ(recorder.stats().early_commits, 2u);
  recorder.flush();  // nothing left: no wait, no error
  EXPECT_EQ(log.events.size(), 6u);
}

}  // namespace
}  // namespace torchless::metal_test
