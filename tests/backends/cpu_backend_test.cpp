// Properties of the CPU backend beyond the conformance suite: memory placement, zero-copy
// weights, and results that do not depend on the thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

// List AVX3_DL among the generated targets as cpu_quant_dot.cpp does, so the VNNI kernels are
// compared with the portable ones below.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#include <fmt/format.h>
#include <hwy/targets.h>

#include "backends/conformance.h"
#include "backends/cpu_activations.h"
#include "backends/reference_ops.h"
#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

TEST(CpuBackend, AllocReturnsZeroedAlignedMemory) {
  CpuBackend backend;
  for (int64_t n : {1, 7, 33, 4097}) {
    const Tensor t = backend.alloc(Shape{n}, DType::F32);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u) << n;
    for (float v : backend.to_host_f32(t)) ASSERT_EQ(v, 0.0f);
  }
}

TEST(CpuBackend, ToDeviceWrapsHostMemoryWithoutCopying) {
  CpuBackend backend;
  std::vector<float> host = conformance::random_floats(12, 1);
  const Tensor t = backend.to_device(HostTensorView{Shape{3, 4}, DType::F32,
                                                    reinterpret_cast<const std::byte*>(host.data()),
                                                    host.size() * sizeof(float)});
  EXPECT_EQ(t.data(), reinterpret_cast<std::byte*>(host.data()));
  host[5] = 42.0f;
  EXPECT_EQ(backend.to_host_f32(t)[5], 42.0f);
}

TEST(CpuBackend, ResultsDoNotDependOnThreadCount) {
  BackendOptions one, three;
  one.threads = 1;
  three.threads = 3;
  CpuBackend a(one), b(three);
  EXPECT_EQ(a.threads(), 1);
  EXPECT_EQ(b.threads(), 3);
  for (DType t : {DType::F16, DType::Q4_0, DType::Q6_K}) {
    const int64_t cols = t == DType::Q6_K ? 512 : 320;
    const auto wa = conformance::make_weights(a, t, 77, cols, 5);
    const auto wb = conformance::make_weights(b, t, 77, cols, 5);
    const auto x = conformance::random_floats(static_cast<size_t>(9 * cols), 6);
    Tensor ya = a.alloc(Shape{9, 77}, DType::F32);
    Tensor yb = b.alloc(Shape{9, 77}, DType::F32);
    a.matmul(wa.tensor, conformance::upload_f32(a, x, Shape{9, cols}), ya);
    b.matmul(wb.tensor, conformance::upload_f32(b, x, Shape{9, cols}), yb);
    EXPECT_EQ(a.to_host_f32(ya), b.to_host_f32(yb)) << dtype_name(t);
  }
}

TEST(CpuBackend, RejectsUnsupportedWeightTypes) {
  CpuBackend backend;
  EXPECT_FALSE(backend.supports_weight_dtype(DType::I32));
  EXPECT_FALSE(backend.supports_weight_dtype(DType::IQ2_XXS));
  Tensor w = backend.alloc(Shape{4, 8}, DType::I32);
  Tensor x = backend.alloc(Shape{8}, DType::F32);
  Tensor y = backend.alloc(Shape{4}, DType::F32);
  EXPECT_THROW(backend.matmul_vec(w, x, y), Error);
}

}  // namespace
}  // namespace torchless

// The CPU backend picks its SIMD kernels at run time; this runs the integer and half-precision
// mat-vec paths under every instruction set this build generated and the machine supports
// (e.g. AVX-512, AVX2, SSE4, and the portable scalar code), not only the best one.
namespace torchless {
namespace {

TEST(CpuBackend, EveryCompiledInstructionSetAgreesWithTheBestOne) {
  CpuBackend backend;
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) std::printf("instruction set: %s\n", hwy::TargetName(target));
  struct Case {
    DType dtype;
    int64_t rows, cols, n;
  };
  for (const Case c :
       {Case{DType::F16, 9, 77, 1}, Case{DType::BF16, 9, 77, 5}, Case{DType::F32, 9, 77, 6},
        Case{DType::Q8_0, 17, 96, 1}, Case{DType::Q4_0, 17, 96, 1}, Case{DType::Q4_0, 17, 160, 7},
        Case{DType::Q8_0, 17, 160, 9}, Case{DType::Q4_K, 7, 512, 1}, Case{DType::Q4_K, 7, 256, 6},
        Case{DType::Q6_K, 7, 512, 1}, Case{DType::Q6_K, 5, 256, 9}, Case{DType::Q5_K, 7, 512, 1},
        Case{DType::Q5_K, 5, 256, 6}}) {
    const auto w = conformance::make_weights(backend, c.dtype, c.rows, c.cols, 21);
    const auto x = conformance::random_floats(static_cast<size_t>(c.n * c.cols), 22, -4.0f, 4.0f);
    std::vector<std::vector<float>> results;
    for (int64_t target : targets) {
      hwy::SetSupportedTargetsForTest(target);
      Tensor y = backend.alloc(Shape{c.n, c.rows}, DType::F32);
      backend.matmul(w.tensor, conformance::upload_f32(backend, x, Shape{c.n, c.cols}), y);
      results.push_back(backend.to_host_f32(y));
      // Row ops too: softmax and silu use vector exp.
      auto s = x;
      backend.softmax_host(std::span<float>(s));
      results.back().insert(results.back().end(), s.begin(), s.end());
    }
    hwy::SetSupportedTargetsForTest(0);
    for (size_t i = 1; i < results.size(); ++i) {
      for (size_t j = 0; j < results[0].size(); ++j) {
        // Integer sums are exact; only the order of float accumulation differs between widths.
        ASSERT_NEAR(results[i][j], results[0][j], 1e-4 * (1.0 + std::fabs(results[0][j])))
            << hwy::TargetName(targets[i]) << " vs " << hwy::TargetName(targets[0]) << " "
            << dtype_name(c.dtype) << " element " << j;
      }
    }
  }
}

}  // namespace
}  // namespace torchless

// The conformance suite bounds the error of 8-bit activations loosely (worst case). Here the
// test quantises the activations the way the CPU backend documents (cpu_activations.h) and
// demands float accuracy against that.
namespace torchless {
namespace {

TEST(CpuBackend, QuantisedWeightsUseExactly8BitBlockActivations) {
  CpuBackend backend;
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    for (int64_t n : {1, 6}) {
      const int64_t rows = 19, cols = 320;
      const auto w = conformance::make_weights(backend, t, rows, cols, 31);
      const auto x = conformance::random_floats(static_cast<size_t>(n * cols), 32, -3.0f, 3.0f);
      const auto xq = cpu_effective_activations(x, t);
      Tensor y = backend.alloc(Shape{n, rows}, DType::F32);
      backend.matmul(w.tensor, conformance::upload_f32(backend, x, Shape{n, cols}), y);
      conformance::expect_close(backend.to_host_f32(y),
                                reference::matmul(w.values, xq, rows, cols, n),
                                conformance::matmul_tolerance(w.values, xq, rows, cols, n, 0),
                                fmt::format("{} x {} tokens", dtype_name(t), n));
    }
  }
}

}  // namespace
}  // namespace torchless
