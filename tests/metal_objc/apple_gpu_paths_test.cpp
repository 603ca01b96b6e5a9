// The device properties that choose the Metal backend's paths, over the emulated device:
// no-copy weights and simdgroup-matrix kernels only where the GPU is an Apple GPU (Apple7
// family), never on unified memory alone (Intel's integrated GPUs report it too); and the
// threadgroup-memory limit, static plus dynamic (metal_threadgroup_memory.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "../metal/metal_test_support.h"
#include "torchless/backends/metal/metal_storage.h"
#include "torchless/backends/metal/metal_threadgroup_memory.h"

namespace torchless::metal_test {
namespace {

constexpr uint32_t kSeed = 8008;

std::unique_ptr<MetalBackend> backend_with(const metal::EmulatedMetalOptions& options) {
  return std::make_unique<MetalBackend>(metal::create_emulated_metal_device(options),
                                        "metal-emulated");
}

// y = W x in float64, W [rows, cols] row-major.
std::vector<double> reference_matvec(const std::vector<float>& w, const std::vector<float>& x,
                                     int64_t rows, int64_t cols) {
  std::vector<double> y(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) y[r] += double{w[r * cols + c]} * x[c];
  }
  return y;
}

// Uploads F32 weights [rows, cols] through to_device and returns W x for `tokens` rows of x.
std::vector<float> run_matmul(MetalBackend& backend, const std::vector<float>& w,
                              const std::vector<float>& x, int64_t rows, int64_t cols,
                              int64_t tokens, const std::byte** weight_contents) {
  const Tensor weights = backend.to_device(HostTensorView{
      Shape{rows, cols}, DType::F32, reinterpret_cast<const std::byte*>(w.data()), w.size() * 4});
  const auto& storage = dynamic_cast<const metal::MetalStorage&>(*weights.buffer);
  *weight_contents = storage.buffer()->contents() + weights.offset;
  Tensor input = backend.alloc(Shape{tokens, cols}, DType::F32);
  backend.upload(std::as_bytes(std::span(x)), input);
  Tensor out = backend.alloc(Shape{tokens, rows}, DType::F32);
  backend.matmul(weights, input, out);
  return backend.to_host_f32(out);
}

void expect_matches_reference(const std::vector<float>& got, const std::vector<float>& w,
                              const std::vector<float>& x, int64_t rows, int64_t cols,
                              int64_t tokens) {
  ASSERT_EQ(got.size(), static_cast<size_t>(rows * tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    const std::vector<float> row(x.begin() + t * cols, x.begin() + (t + 1) * cols);
    const std::vector<double> want = reference_matvec(w, row, rows, cols);
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_NEAR(got[t * rows + r], want[r], 1e-4 * (1.0 + std::fabs(want[r])))
          << "token " << t << ", row " << r << ", seed " << kSeed;
    }
  }
}

TEST(AppleGpuPaths, AnAppleGpuReadsWeightsInPlace) {
  const int64_t rows = 37, cols = 203, tokens = 3;
  const std::vector<float> w = random_floats(rows * cols, kSeed);
  const std::vector<float> x = random_floats(tokens * cols, kSeed + 1);
  auto backend = backend_with({});
  const std::byte* contents = nullptr;
  const auto y = run_matmul(*backend, w, x, rows, cols, tokens, &contents);
  EXPECT_EQ(emulated(*backend).counters().buffers_wrapped, 1u);
  EXPECT_EQ(contents, reinterpret_cast<const std::byte*>(w.data()));
  expect_matches_reference(y, w, x, rows, cols, tokens);
}

TEST(AppleGpuPaths, UnifiedMemoryOfAnotherVendorsGpuGetsCopiedWeights) {
  const int64_t rows = 37, cols = 203, tokens = 3;
  const std::vector<float> w = random_floats(rows * cols, kSeed);
  const std::vector<float> x = random_floats(tokens * cols, kSeed + 1);
  metal::EmulatedMetalOptions intel_integrated;
  intel_integrated.apple_gpu = false;  // unified memory, but not Apple7
  intel_integrated.simdgroup_matrix = false;
  auto backend = backend_with(intel_integrated);
  ASSERT_TRUE(backend->device().unified_memory);
  const std::byte* contents = nullptr;
  const auto y = run_matmul(*backend, w, x, rows, cols, tokens, &contents);
  EXPECT_EQ(emulated(*backend).counters().buffers_wrapped, 0u);
  EXPECT_NE(contents, reinterpret_cast<const std::byte*>(w.data()));
  expect_matches_reference(y, w, x, rows, cols, tokens);
}

TEST(AppleGpuPaths, WithoutSimdgroupMatricesPromptsUseTheMatVecKernels) {
  metal::EmulatedMetalOptions options;
  options.simdgroup_matrix = false;
  auto backend = backend_with(options);
  const metal::MetalDeviceInfo& info = backend->metal_device().info();
  for (const char* gemm : {"matmul_kernel", "matmul_q4_0_kernel", "matmul_bf16_kernel",
                           "probe_simdgroup_load_origin_kernel"}) {
    EXPECT_FALSE(MetalBackend::uses_kernel(info, gemm)) << gemm;
  }
  for (const char* used : {"matmul_vec_kernel", "matmul_vec_q4_0_kernel", "matmul_vec_tiled_kernel",
                           "rope_kernel", "probe_shuffle_down_kernel"}) {
    EXPECT_TRUE(MetalBackend::uses_kernel(info, used)) << used;
  }
  // A 13-token prompt (GEMM-sized) still computes W x, through the mat-vec kernels.
  const int64_t rows = 29, cols = 131, tokens = 13;
  const std::vector<float> w = random_floats(rows * cols, kSeed + 2);
  const std::vector<float> x = random_floats(tokens * cols, kSeed + 3);
  const std::byte* contents = nullptr;
  const auto y = run_matmul(*backend, w, x, rows, cols, tokens, &contents);
  expect_matches_reference(y, w, x, rows, cols, tokens);
}

TEST(AppleGpuPaths, EveryKernelIsUsedWhereSimdgroupMatricesAndBf16Exist) {
  metal::MetalDeviceInfo apple;
  apple.has_simdgroup_matrix = true;
  apple.supports_bf16 = true;
  for (const char* kernel : {"matmul_kernel", "matmul_vec_kernel", "matmul_bf16_kernel",
                             "embedding_bf16_kernel", "probe_simdgroup_load_origin_kernel"}) {
    EXPECT_TRUE(MetalBackend::uses_kernel(apple, kernel)) << kernel;
  }
}

TEST(AppleGpuPaths, Bf16KernelsAreUnusedWithoutBf16Support) {
  metal::MetalDeviceInfo info;
  info.has_simdgroup_matrix = true;
  info.supports_bf16 = false;  // macOS 13, or a GPU below Apple6 / Metal 3
  for (const char* kernel :
       {"matmul_bf16_kernel", "matmul_vec_bf16_kernel", "embedding_bf16_kernel"}) {
    EXPECT_FALSE(MetalBackend::uses_kernel(info, kernel)) << kernel;
  }
  EXPECT_TRUE(MetalBackend::uses_kernel(info, "matmul_vec_f16_kernel"));
}

TEST(ThreadgroupMemory, StaticAndDynamicBytesCountTogether) {
  const std::map<uint32_t, size_t> dynamic{{0, 16 * 1024}};
  EXPECT_EQ(metal::threadgroup_memory_excess("k", 16 * 1024, dynamic, 32 * 1024, "gpu"), "");
  const std::string excess =
      metal::threadgroup_memory_excess("matmul_kernel", 16 * 1024 + 16, dynamic, 32 * 1024, "M1");
  EXPECT_NE(excess.find("32784 bytes"), std::string::npos) << excess;
  EXPECT_NE(excess.find("16400 static + 16384 dynamic"), std::string::npos) << excess;
  EXPECT_NE(excess.find("M1 allows 32768"), std::string::npos) << excess;
}

TEST(ThreadgroupMemory, EveryDynamicIndexCounts) {
  const std::map<uint32_t, size_t> dynamic{{0, 8192}, {1, 8192}, {3, 16}};
  EXPECT_EQ(metal::threadgroup_memory_excess("k", 0, dynamic, 16384 + 16, "gpu"), "");
  EXPECT_NE(metal::threadgroup_memory_excess("k", 0, dynamic, 16384, "gpu"), "");
  EXPECT_EQ(metal::round_threadgroup_memory(1), 16u);
  EXPECT_EQ(metal::round_threadgroup_memory(4097), 4112u);
  EXPECT_EQ(metal::round_threadgroup_memory(4096), 4096u);
}

}  // namespace
}  // namespace torchless::metal_test
