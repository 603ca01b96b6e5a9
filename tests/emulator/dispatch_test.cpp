// Dispatch validation as a GPU would do it (bound buffers, alignment, limits), the kernel
// registry and its parsed signatures, and the options read from the environment.
#include <gtest/gtest.h>

#include <cstdlib>

#include "emulator/emulator_test_util.h"

namespace torchless::mslemu {
namespace {

using testing::error_of;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "message: " << (haystack)

class DispatchTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::register_kernels(); }

  RowsArgs args_{2, 64, 1e-5f};
  std::vector<float> x_ = std::vector<float>(128 + 4, 1.0f);
  std::vector<float> w_ = std::vector<float>(64, 1.0f);
  std::vector<float> y_ = std::vector<float>(128, 0.0f);

  Dispatch rms() {
    Dispatch d("rms_norm_f32");
    d.bytes(0, &args_, sizeof args_)
        .buffer(1, x_.data(), 128 * sizeof(float))
        .buffer(2, w_.data(), w_.size() * sizeof(float))
        .buffer(3, y_.data(), y_.size() * sizeof(float))
        .threadgroup_memory(0, 64 * sizeof(float));
    return d;
  }
};

TEST_F(DispatchTest, RegistryKnowsKernelsAndTheirSignatures) {
  EXPECT_EQ(find_kernel("no_such_kernel"), nullptr);
  const KernelInfo* k = find_kernel("rms_norm_f32");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->file, "tests/emulator/kernels/rms_norm.metal");
  ASSERT_EQ(k->params.size(), 10u);
  EXPECT_EQ(k->params[0].name, "args");
  EXPECT_EQ(k->params[0].role, ParamRole::Buffer);
  EXPECT_EQ(k->params[0].kind, ParamKind::Reference);
  EXPECT_EQ(k->params[0].pointee_size, sizeof(RowsArgs));
  EXPECT_FALSE(k->params[0].writable);
  EXPECT_EQ(k->params[3].index, 3u);
  EXPECT_TRUE(k->params[3].writable);
  EXPECT_EQ(k->params[4].role, ParamRole::Threadgroup);
  EXPECT_EQ(k->params[5].role, ParamRole::Builtin);
  EXPECT_EQ(k->params[5].builtin, Builtin::ThreadgroupPositionInGrid);
  const std::vector<std::string> names = kernel_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "gemm_f32"), names.end());
  EXPECT_CONTAINS(error_of([] { Dispatch("no_such_kernel"); }), "unknown kernel 'no_such_kernel'");
}

TEST_F(DispatchTest, ValidDispatchRuns) {
  EXPECT_EQ(error_of([&] { rms().dispatch_threadgroups({2, 1, 1}, {64, 1, 1}); }), "");
  EXPECT_NEAR(y_[5], 1.0f, 1e-5);
}

TEST_F(DispatchTest, UnboundBufferIsAnError) {
  EXPECT_CONTAINS(error_of([&] {
                    Dispatch("rms_norm_f32")
                        .bytes(0, &args_, sizeof args_)
                        .threadgroup_memory(0, 64 * sizeof(float))
                        .dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
                  }),
                  "buffer(1) 'x' is not bound");
}

TEST_F(DispatchTest, MisalignedVectorBufferIsAnError) {
  std::vector<float> y(4);
  EXPECT_CONTAINS(error_of([&] {
                    Dispatch("mat_vec_f32")
                        .bytes(0, &args_, sizeof args_)
                        .buffer(1, x_.data() + 1, 64 * sizeof(float))
                        .buffer(2, w_.data(), w_.size() * sizeof(float))
                        .buffer(3, y.data(), y.size() * sizeof(float))
                        .dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
                  }),
                  "buffer(1) 'w' (device const float4*) must be aligned to 16 bytes");
}

TEST_F(DispatchTest, ReferenceBufferMustHoldTheStruct) {
  EXPECT_CONTAINS(error_of([&] {
                    rms().bytes(0, &args_, 4).dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
                  }),
                  "has 4 bytes, needs 12");
}

TEST_F(DispatchTest, GpuLimitsAreEnforced) {
  EXPECT_CONTAINS(error_of([&] {
                    rms().dispatch_threadgroups({1, 1, 1}, {1025, 1, 1});
                  }),
                  "1025 threads per threadgroup (1025, 1, 1) exceed the limit of 1024");
  EXPECT_CONTAINS(error_of([&] {
                    rms().dispatch_threadgroups({1, 1, 1}, {32, 33, 1});
                  }),
                  "exceed the limit of 1024");
  EXPECT_CONTAINS(error_of([&] {
                    rms().threadgroup_memory(0, 100).dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
                  }),
                  "length 100 is not a positive multiple of 16");
  EXPECT_CONTAINS(
      error_of([&] {
        rms().threadgroup_memory(0, 32 * 1024 + 16).dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
      }),
      "exceed 32768");
  std::vector<std::byte> big(4097);
  EXPECT_CONTAINS(error_of([&] { rms().bytes(0, big.data(), big.size()); }),
                  "exceed setBytes' 4096 bytes");
  EXPECT_CONTAINS(error_of([&] {
                    Dispatch("rms_norm_f32")
                        .bytes(0, &args_, sizeof args_)
                        .buffer(1, x_.data(), 4)
                        .buffer(2, x_.data(), 4)
                        .buffer(3, x_.data(), 4)
                        .dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
                  }),
                  "threadgroup(0) 'partials' has no setThreadgroupMemoryLength");
}

TEST_F(DispatchTest, KernelAttributeLowersTheThreadLimit) {
  const KernelInfo* k = find_kernel("limited_threads");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->max_total_threads_per_threadgroup, 64u);
  EXPECT_EQ(find_kernel("rms_norm_f32")->max_total_threads_per_threadgroup, 1024u);
  EXPECT_CONTAINS(error_of([&] {
                    Dispatch("limited_threads")
                        .buffer(0, y_.data(), y_.size() * sizeof(float))
                        .dispatch_threadgroups({1, 1, 1}, {65, 1, 1});
                  }),
                  "65 threads per threadgroup (65, 1, 1) exceed the limit of 64");
  EXPECT_EQ(error_of([&] {
              Dispatch("limited_threads")
                  .buffer(0, y_.data(), y_.size() * sizeof(float))
                  .dispatch_threadgroups({1, 1, 1}, {64, 1, 1});
            }),
            "");
  EXPECT_EQ(y_[63], 63.0f);
}

TEST_F(DispatchTest, EmptyGridDoesNothing) {
  EXPECT_EQ(error_of([&] { rms().dispatch_threadgroups({0, 1, 1}, {32, 1, 1}); }), "");
  EXPECT_EQ(y_[0], 0.0f);
}

TEST(Options, ReadFromTheEnvironment) {
  const char* saved = std::getenv("TORCHLESS_MSL_ORDER");
  const std::string restore = saved ? saved : "";
  setenv("TORCHLESS_MSL_ORDER", "shuffle", 1);
  setenv("TORCHLESS_MSL_SEED", "17", 1);
  setenv("TORCHLESS_MSL_SIMD_WIDTH", "64", 1);
  Options o = default_options();
  EXPECT_EQ(o.thread_order, ThreadOrder::Shuffle);
  EXPECT_EQ(o.seed, 17u);
  EXPECT_EQ(o.simd_width, 64);
  setenv("TORCHLESS_MSL_SIMD_WIDTH", "48", 1);
  EXPECT_THROW(default_options(), Error);
  setenv("TORCHLESS_MSL_ORDER", "sideways", 1);
  EXPECT_THROW(default_options(), Error);
  unsetenv("TORCHLESS_MSL_SEED");
  unsetenv("TORCHLESS_MSL_SIMD_WIDTH");
  if (saved) {
    setenv("TORCHLESS_MSL_ORDER", restore.c_str(), 1);
  } else {
    unsetenv("TORCHLESS_MSL_ORDER");
  }
}

}  // namespace
}  // namespace torchless::mslemu
