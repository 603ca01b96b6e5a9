// Tests of the real Apple GPU through the Apple device layer and MetalBackend. They run on a
// Mac with a usable Metal GPU and skip, saying why, everywhere else (Linux, CI virtual
// machines whose paravirtual GPU lacks the Apple7/Metal 3 family).
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <sys/mman.h>

#include <gtest/gtest.h>

#include "torchless/backends/backend.h"
#include "torchless/core/mapped_file.h"

#if defined(TORCHLESS_HAS_METAL)
#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_device.h"
#endif

namespace torchless {
namespace {

// Empty when the Apple GPU can be tested here; otherwise the reason to skip.
std::string skip_reason() {
#if defined(TORCHLESS_HAS_METAL)
  std::string reason;
  if (metal::apple_metal_available(&reason)) return {};
  return "no usable Metal GPU: " + reason;
#else
  return "this build has no Apple Metal device layer (not macOS, or TORCHLESS_METAL=OFF)";
#endif
}

#define SKIP_WITHOUT_APPLE_GPU()                 \
  do {                                           \
    const std::string reason = skip_reason();    \
    if (!reason.empty()) GTEST_SKIP() << reason; \
  } while (false)

std::vector<float> random_values(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(AppleMetalDevice, ReportsUsableLimits) {
  SKIP_WITHOUT_APPLE_GPU();
#if defined(TORCHLESS_HAS_METAL)
  const auto device = metal::create_apple_metal_device();
  const metal::MetalDeviceInfo& info = device->info();
  EXPECT_FALSE(info.name.empty());
  EXPECT_TRUE(info.simd_width == 32 || info.simd_width == 64) << info.simd_width;
  EXPECT_GE(info.max_threads_per_threadgroup, 256u);
  EXPECT_GE(info.max_threadgroup_memory, 16u * 1024);
  EXPECT_GT(info.max_buffer_length, uint64_t{1} << 28);
  EXPECT_GT(info.recommended_max_working_set, uint64_t{1} << 28);
#endif
}

TEST(AppleMetalDevice, WrapsPageAlignedHostMemoryWithoutACopy) {
  SKIP_WITHOUT_APPLE_GPU();
#if defined(TORCHLESS_HAS_METAL)
  const auto device = metal::create_apple_metal_device();
  if (!device->info().unified_memory) GTEST_SKIP() << "no unified memory: weights are copied";
  const size_t page = system_page_size();
  const size_t length = 3 * page;
  // Anonymous pages, as a mapped model file would be: one VM region, page aligned.
  void* pages = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
  ASSERT_NE(pages, MAP_FAILED);
  auto* memory = static_cast<std::byte*>(pages);
  {
    const auto buffer = device->wrap_host_memory(memory, length);
    EXPECT_EQ(buffer->contents(), memory);
    EXPECT_EQ(buffer->length(), length);
    EXPECT_THROW(device->wrap_host_memory(memory + 1, page), Error);
  }
  munmap(pages, length);
#endif
}

TEST(AppleMetalDevice, UnknownKernelIsAClearError) {
  SKIP_WITHOUT_APPLE_GPU();
#if defined(TORCHLESS_HAS_METAL)
  const auto device = metal::create_apple_metal_device();
  try {
    device->pipeline("no_such_kernel_42");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_kernel_42"), std::string::npos) << e.what();
  }
#endif
}

TEST(AppleMetalBackend, AutoPicksMetalOnAMac) {
  SKIP_WITHOUT_APPLE_GPU();
#if defined(TORCHLESS_HAS_METAL)
  EXPECT_TRUE(MetalBackend::is_available());
  const auto backend = init_backend(BackendPreference::Auto);
  EXPECT_EQ(backend->name(), "metal");
  EXPECT_FALSE(dynamic_cast<MetalBackend&>(*backend).device_name().empty());
#endif
}

// The spec's host-vector conveniences on the GPU against the CPU backend.
TEST(AppleMetalBackend, SpecConveniencesMatchTheCpu) {
  SKIP_WITHOUT_APPLE_GPU();
  const auto gpu = init_backend(BackendPreference::Metal);
  const auto cpu = init_backend(BackendPreference::Cpu);
  const int64_t rows = 37, cols = 1029;
  std::vector<float> x = random_values(cols, 4.0f, 7);
  std::vector<float> x_cpu = x;
  gpu->softmax_host(std::span(x));
  cpu->softmax_host(std::span(x_cpu));
  for (int64_t i = 0; i < cols; ++i) EXPECT_NEAR(x[i], x_cpu[i], 1e-6f) << "softmax " << i;

  const std::vector<float> weight = random_values(cols, 1.0f, 8);
  gpu->rmsnorm_host(std::span(x), weight, 1e-5f);
  cpu->rmsnorm_host(std::span(x_cpu), weight, 1e-5f);
  for (int64_t i = 0; i < cols; ++i) EXPECT_NEAR(x[i], x_cpu[i], 1e-4f) << "rmsnorm " << i;

  const std::vector<float> w = random_values(rows * cols, 1.0f, 9);
  const std::vector<float> y_gpu = gpu->matmul_vec_host(gpu->to_device_2d(w, rows, cols), x);
  const std::vector<float> y_cpu = cpu->matmul_vec_host(cpu->to_device_2d(w, rows, cols), x);
  ASSERT_EQ(y_gpu.size(), static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_NEAR(y_gpu[r], y_cpu[r], 1e-4f * (1.0f + std::fabs(y_cpu[r]))) << "row " << r;
  }
}

}  // namespace
}  // namespace torchless
