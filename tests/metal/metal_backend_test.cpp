// MetalBackend's own logic on the emulated device: buffer pool reuse, one command buffer per
// forward pass, barrier placement (checked independently by the emulated device, which fails
// a command buffer that lacks a needed barrier), zero-copy weights, upload ordering, errors,
// the spec's conveniences and the embedded shader source.
#include <cstdlib>
#include <regex>

#include "metal_test_support.h"
#include "torchless/backends/metal/emulator/msl_emulator.h"
#include "torchless/backends/metal/metal_kernel_args.h"
#include "torchless/backends/metal/metal_shader_source.h"
#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

namespace torchless::metal_test {
namespace {

TEST(MetalBackendTest, InitBackendByNameGivesTheEmulatedMetalBackend) {
  auto backend = init_backend("metal-emulated");
  ASSERT_NE(dynamic_cast<MetalBackend*>(backend.get()), nullptr);
  EXPECT_EQ(backend->name(), "metal-emulated");
  EXPECT_TRUE(backend->supports_weight_dtype(DType::Q4_0));
  EXPECT_TRUE(backend->supports_weight_dtype(DType::Q6_K));
  EXPECT_TRUE(backend->supports_weight_dtype(DType::Q5_K));
  EXPECT_TRUE(backend->supports_weight_dtype(DType::IQ4_XS));
  EXPECT_FALSE(backend->supports_weight_dtype(DType::IQ2_XXS));
}

TEST(MetalBackendTest, IsAvailableIsFalseWithoutAnAppleGpu) {
#if !defined(TORCHLESS_HAS_METAL)
  EXPECT_FALSE(MetalBackend::is_available());
  EXPECT_THROW(MetalBackend{}, Error);
#endif
  auto backend = make_backend(32);
  EXPECT_NE(backend->device_name().find("emulator"), std::string::npos);
}

TEST(MetalBackendTest, PoolReusesReleasedBuffers) {
  auto backend = make_backend(32);
  { Tensor a = backend->alloc(Shape{1000}, DType::F32); }
  const uint64_t created = emulated(*backend).counters().buffers_created;
  { Tensor b = backend->alloc(Shape{990}, DType::F32); }  // same size bucket
  EXPECT_EQ(emulated(*backend).counters().buffers_created, created);
  EXPECT_EQ(backend->pool_stats().reuses, 1u);
  Tensor c = backend->alloc(Shape{1000}, DType::F32);
  Tensor d = backend->alloc(Shape{1000}, DType::F32);  // c holds the free one
  EXPECT_EQ(emulated(*backend).counters().buffers_created, created + 1);
  EXPECT_NE(c.buffer->host_data(), d.buffer->host_data());
}

TEST(MetalBackendTest, BucketSizesWasteAtMostAQuarter) {
  for (size_t n : {1u, 255u, 257u, 1000u, 4097u, 123457u, 50000001u}) {
    const size_t b = metal::MetalBufferPool::bucket_size(n);
    EXPECT_GE(b, n);
    EXPECT_LE(b, std::max<size_t>(256, n + n / 4 + 1)) << n;
  }
}

// A forward-pass-like sequence records into one command buffer, committed only at to_host.
TEST(MetalBackendTest, OneCommandBufferPerForwardPass) {
  auto backend = make_backend(32);
  const int64_t dim = 64, hidden = 96;
  const auto w1 = random_floats(hidden * dim, 1);
  const auto w2 = random_floats(dim * hidden, 2);
  const Tensor w1t = upload_f32(*backend, w1, Shape{hidden, dim});
  const Tensor w2t = upload_f32(*backend, w2, Shape{dim, hidden});
  const Tensor norm = upload_f32(*backend, random_floats(dim, 3), Shape{dim});
  Tensor x = upload_f32(*backend, random_floats(dim, 4), Shape{dim});
  const auto& counters = emulated(*backend).counters();
  const uint64_t cb0 = counters.command_buffers;
  Tensor h = backend->alloc(Shape{dim}, DType::F32);
  Tensor a = backend->alloc(Shape{hidden}, DType::F32);
  Tensor b = backend->alloc(Shape{hidden}, DType::F32);
  for (int layer = 0; layer < 3; ++layer) {
    backend->rmsnorm(x, norm, h, 1e-5f);
    backend->matmul_vec(w1t, h, a);
    backend->matmul_vec(w1t, h, b);  // independent of the previous one: no barrier between
    backend->fused_silu_mul(a, b, a);
    backend->matmul_vec(w2t, a, h);
    backend->add(x, h, x);
  }
  EXPECT_EQ(counters.command_buffers, cb0);  // nothing committed while recording
  const auto result = backend->to_host_f32(x);
  EXPECT_EQ(counters.command_buffers, cb0 + 1);
  EXPECT_EQ(backend->stats().dispatches, 18u);
  // A barrier before every op except the first and each layer's second mat-vec, which only
  // reads what the first one reads: 18 - 1 - 3.
  EXPECT_EQ(backend->stats().barriers, 14u);
  EXPECT_EQ(counters.barriers, backend->stats().barriers);
  for (float v : result) EXPECT_TRUE(std::isfinite(v));
}

TEST(MetalBackendTest, EmulatedDeviceRejectsAMissingBarrier) {
  auto device = metal::create_emulated_metal_device({});
  auto x = device->new_buffer(64 * 4);
  auto y = device->new_buffer(64 * 4);
  const metal::ElementwiseArgs args{64, 64};
  auto cb = device->new_command_buffer();
  cb->set_pipeline(device->pipeline("add_kernel"));
  cb->set_bytes(&args, sizeof args, 0);
  cb->set_buffer(*x, 0, 256, 1);
  cb->set_buffer(*x, 0, 256, 2);
  cb->set_buffer(*y, 0, 256, 3);
  cb->dispatch_threadgroups({1, 1, 1}, {64, 1, 1});
  cb->set_buffer(*y, 0, 256, 1);  // reads y, written above, with no barrier
  cb->set_buffer(*x, 0, 256, 3);
  cb->dispatch_threadgroups({1, 1, 1}, {64, 1, 1});
  cb->commit();
  try {
    cb->wait();
    FAIL() << "expected a missing-barrier error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing memory barrier"), std::string::npos) << e.what();
  }
}

// The argument table outlives a dispatch, as in MTLComputeCommandEncoder: rope_kernel declares
// buffers 1 and 2 only, so the y still bound at index 3 by add_kernel is not touched by it and
// needs no barrier. (The emulated device once counted such leftovers as accesses and failed
// every Qwen model: an add of a bias left its output at index 3, the next rope did not bind it.)
TEST(MetalBackendTest, EmulatedDeviceIgnoresBuffersTheKernelDoesNotDeclare) {
  auto device = metal::create_emulated_metal_device({});
  auto x = device->new_buffer(64 * 4);
  auto y = device->new_buffer(64 * 4);
  auto q = device->new_buffer(64 * 4);
  auto inv_freq = device->new_buffer(32 * 4);
  const metal::ElementwiseArgs add_args{64, 64};
  metal::RopeArgs rope_args{};
  rope_args.n_tokens = 1;
  rope_args.n_heads = 1;
  rope_args.head_dim = 64;
  auto cb = device->new_command_buffer();
  cb->set_pipeline(device->pipeline("add_kernel"));
  cb->set_bytes(&add_args, sizeof add_args, 0);
  cb->set_buffer(*x, 0, 256, 1);
  cb->set_buffer(*x, 0, 256, 2);
  cb->set_buffer(*y, 0, 256, 3);
  cb->dispatch_threadgroups({1, 1, 1}, {64, 1, 1});
  cb->set_pipeline(device->pipeline("rope_kernel"));
  cb->set_bytes(&rope_args, sizeof rope_args, 0);
  cb->set_buffer(*q, 0, 256, 1);
  cb->set_buffer(*inv_freq, 0, 128, 2);  // y stays bound at index 3
  cb->dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
  cb->commit();
  EXPECT_NO_THROW(cb->wait());
}

// A buffer the kernel declares is read or written whichever dispatch bound it: the second add
// rebinds only its first input, so it writes y (index 3, bound for the first add) again.
TEST(MetalBackendTest, EmulatedDeviceChecksADeclaredBufferLeftBoundByAnEarlierDispatch) {
  auto device = metal::create_emulated_metal_device({});
  auto x = device->new_buffer(64 * 4);
  auto y = device->new_buffer(64 * 4);
  auto z = device->new_buffer(64 * 4);
  const metal::ElementwiseArgs args{64, 64};
  auto cb = device->new_command_buffer();
  cb->set_pipeline(device->pipeline("add_kernel"));
  cb->set_bytes(&args, sizeof args, 0);
  cb->set_buffer(*x, 0, 256, 1);
  cb->set_buffer(*x, 0, 256, 2);
  cb->set_buffer(*y, 0, 256, 3);
  cb->dispatch_threadgroups({1, 1, 1}, {64, 1, 1});
  cb->set_buffer(*z, 0, 256, 1);
  cb->dispatch_threadgroups({1, 1, 1}, {64, 1, 1});
  cb->commit();
  try {
    cb->wait();
    FAIL() << "expected a missing-barrier error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add_kernel reads or writes buffer(3)"), std::string::npos)
        << e.what();
  }
}

// The recorder's side of the case above, through the ops of a Qwen2 and a Qwen3 attention
// block: a bias add binds three buffers and the RoPE after it two, and RoPE of q and of k
// follow each other after per-head norms in place. The recorder places a barrier exactly where
// a dispatch touches what an earlier one wrote (or writes what it read) since the last barrier,
// the emulated device accepts the command buffer, and the results are the CPU backend's.
TEST(MetalBackendTest, BarriersOfTheQwenAttentionPrologue) {
  auto backend = make_backend(32);
  auto cpu = init_backend("cpu");
  const int n = 3, heads = 3, kv_heads = 1, head_dim = 48;
  const auto qv = random_floats(n * heads * head_dim, 11);
  const auto kv = random_floats(n * kv_heads * head_dim, 12);
  const auto bias = random_floats(kv_heads * head_dim, 13);
  const auto norm = random_floats(head_dim, 14);
  std::vector<float> inv_freq(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) inv_freq[i] = std::pow(1e4f, -2.0f * i / head_dim);
  struct Run {
    std::vector<float> q, k;
    uint64_t barriers = 0;
  };
  auto run = [&](Backend& b) {
    Tensor q = upload_f32(b, qv, Shape{n, heads * head_dim});
    Tensor k = upload_f32(b, kv, Shape{n, kv_heads * head_dim});
    const Tensor bk = upload_f32(b, bias, Shape{kv_heads * head_dim});
    const Tensor w = upload_f32(b, norm, Shape{head_dim});
    const Tensor f = upload_f32(b, inv_freq, Shape{head_dim / 2});
    auto* metal = dynamic_cast<MetalBackend*>(&b);
    const uint64_t before = metal ? metal->stats().barriers : 0;
    b.add(k, bk, k);                                            // Qwen2: bias of k
    b.rope(q, f, RopeParams{heads, head_dim, 5, true});         // q: no barrier
    Tensor q_heads = q.reshape(Shape{n * heads, head_dim});     // barrier: q was roped
    Tensor k_heads = k.reshape(Shape{n * kv_heads, head_dim});  // k was biased
    b.rmsnorm(q_heads, w, q_heads, 1e-6f);                      // Qwen3: norms in place
    b.rmsnorm(k_heads, w, k_heads, 1e-6f);
    b.rope(q, f, RopeParams{heads, head_dim, 5, true});  // barrier: q was normed
    b.rope(k, f, RopeParams{kv_heads, head_dim, 5, true});
    Run r{b.to_host_f32(q), b.to_host_f32(k), metal ? metal->stats().barriers - before : 0};
    return r;
  };
  const Run metal = run(*backend);
  const Run reference = run(*cpu);
  EXPECT_EQ(metal.barriers, 2u);
  for (size_t i = 0; i < qv.size(); ++i) ASSERT_NEAR(metal.q[i], reference.q[i], 1e-5) << i;
  for (size_t i = 0; i < kv.size(); ++i) ASSERT_NEAR(metal.k[i], reference.k[i], 1e-5) << i;
}

TEST(MetalBackendTest, CommandBufferErrorsSurfaceAtSynchronize) {
  auto device = metal::create_emulated_metal_device({});
  auto x = device->new_buffer(16);
  const metal::ElementwiseArgs args{4, 4};
  auto cb = device->new_command_buffer();
  cb->set_pipeline(device->pipeline("silu_kernel"));
  cb->set_bytes(&args, sizeof args, 0);
  cb->set_buffer(*x, 0, 16, 1);
  cb->dispatch_threadgroups({1, 1, 1}, {4096, 1, 1});  // beyond the threadgroup limit
  cb->commit();
  EXPECT_THROW(cb->wait(), Error);
  EXPECT_THROW(device->pipeline("no_such_kernel"), Error);
}

TEST(MetalBackendTest, WeightsAreWrappedWithoutACopy) {
  auto backend = make_backend(32);
  const auto values = random_floats(3000, 5);
  HostTensorView view{Shape{30, 100}, DType::F32, reinterpret_cast<const std::byte*>(values.data()),
                      values.size() * 4};
  const Tensor w = backend->to_device(view);
  EXPECT_EQ(w.data(), view.data);  // the very same bytes
  EXPECT_EQ(emulated(*backend).counters().buffers_wrapped, 1u);
  // A second view inside the same wrapped pages reuses the wrap.
  HostTensorView row{Shape{1, 100}, DType::F32, view.data + 400, 400};
  const Tensor r = backend->to_device(row);
  EXPECT_EQ(emulated(*backend).counters().buffers_wrapped, 1u);
  EXPECT_EQ(backend->to_host_f32(r),
            std::vector<float>(values.begin() + 100, values.begin() + 200));
  const auto y = backend->matmul_vec_host(w, random_floats(100, 6));
  EXPECT_EQ(y.size(), 30u);
}

TEST(MetalBackendTest, UploadWaitsForRecordedWorkThatReadsTheTensor) {
  auto backend = make_backend(32);
  const std::vector<float> one(16, 1.0f), two(16, 2.0f);
  Tensor a = upload_f32(*backend, one, Shape{16});
  Tensor out = backend->alloc(Shape{16}, DType::F32);
  backend->add(a, a, out);                            // recorded, reads a = 1
  backend->upload(std::as_bytes(std::span(two)), a);  // must not change what add sees
  EXPECT_EQ(backend->to_host_f32(out), std::vector<float>(16, 2.0f));
  EXPECT_EQ(backend->to_host_f32(a), two);
}

TEST(MetalBackendTest, ConveniencesWorkOnAMetalBackend) {
  auto backend = make_backend(32);
  std::vector<float> x = {1.0f, 2.0f, 3.0f};
  backend->softmax_host(std::span<float>(x));
  double sum = x[0] + x[1] + x[2];
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_GT(x[2], x[1]);
  const Tensor t = backend->to_device_2d(std::vector<float>{1, 2, 3, 4, 5, 6}, 2, 3);
  EXPECT_EQ(backend->matmul_vec_host(t, std::vector<float>{1, 0, 1}), (std::vector<float>{4, 10}));
}

TEST(MetalBackendTest, OpsRejectBadOperands) {
  auto backend = make_backend(32);
  Tensor x = backend->alloc(Shape{4, 8}, DType::F32);
  Tensor w = backend->alloc(Shape{9}, DType::F32);
  EXPECT_THROW(backend->rmsnorm(x, w, x, 1e-5f), Error);
  Tensor q8 = backend->alloc(Shape{2, 256}, DType::Q8_0);
  Tensor y = backend->alloc(Shape{3}, DType::F32);
  EXPECT_THROW(backend->matmul_vec(q8, backend->alloc(Shape{256}, DType::F32), y), Error);
  Tensor cache = backend->alloc(Shape{4, 8}, DType::F32);
  EXPECT_THROW(backend->kv_store(x, cache, 1), Error);  // rows 1..5 outside a 4-row cache
}

TEST(MetalBackendTest, EmbeddedShaderSourceHasEveryKernel) {
  const std::string_view source = metal::metal_shader_source();
  EXPECT_EQ(source.find("#include \""), std::string_view::npos) << "local includes inlined";
  EXPECT_NE(source.find("struct MatmulArgs"), std::string_view::npos);
  auto backend = make_backend(32);  // registers the kernels
  const auto names = mslemu::kernel_names();
  EXPECT_GE(names.size(), 30u);
  // A plain kernel by its definition, a variant by its instantiation's host name.
  for (const std::string& name : names) {
    EXPECT_TRUE(source.find("kernel void " + name + "(") != std::string_view::npos ||
                source.find("[[host_name(\"" + name + "\")]]") != std::string_view::npos)
        << name;
  }
}

}  // namespace
}  // namespace torchless::metal_test
