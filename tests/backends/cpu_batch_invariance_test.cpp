// The CPU matmul's batch invariance, which continuous batching relies on: every output element
// of a batched matmul is bit-for-bit the mat-vec's for the same weight row and input vector,
// whatever the batch size, the vector's position in the batch and the thread count (same
// activation quantisation, same per-output reduction order). Every weight dtype the backend
// runs, at sizes that leave row, token and column tails.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <hwy/targets.h>

#include "backends/conformance.h"
#include "torchless/backends/cpu/cpu_backend.h"

namespace torchless {
namespace {

constexpr int64_t kRows = 70;     // one 64-row block and a tail of 6: 4-row tile plus 2 rows
constexpr int64_t kVectors = 33;  // the largest batch

// Columns: three K super-blocks, an odd number (7) of 32-element blocks, or a float tail.
int64_t columns(DType t) {
  if (!dtype_is_quantized(t)) return 77;
  return dtype_block_size(t) == 256 ? 768 : 224;
}

uint32_t bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

// y[r] of the mat-vec of every vector, on a 1-thread backend: the reference.
std::vector<std::vector<float>> matvec_outputs(DType t, const std::vector<float>& x, int64_t cols,
                                               uint64_t seed) {
  BackendOptions options;
  options.threads = 1;
  CpuBackend backend(options);
  const auto w = conformance::make_weights(backend, t, kRows, cols, seed);
  std::vector<std::vector<float>> out;
  for (int64_t v = 0; v < kVectors; ++v) {
    const std::vector<float> xv(x.begin() + v * cols, x.begin() + (v + 1) * cols);
    Tensor y = backend.alloc(Shape{kRows}, DType::F32);
    backend.matmul_vec(w.tensor, conformance::upload_f32(backend, xv, Shape{cols}), y);
    out.push_back(backend.to_host_f32(y));
  }
  return out;
}

// The first output of `t` whose batched value differs from the mat-vec's, or "" when none.
std::string first_mismatch(DType t) {
  const int64_t cols = columns(t);
  const uint64_t seed = 9000 + static_cast<uint64_t>(t);
  const auto x =
      conformance::random_floats(static_cast<size_t>(kVectors * cols), seed + 1, -2.0f, 2.0f);
  const auto want = matvec_outputs(t, x, cols, seed);
  for (int threads : {1, 3}) {
    BackendOptions options;
    options.threads = threads;
    CpuBackend backend(options);
    const auto w = conformance::make_weights(backend, t, kRows, cols, seed);
    for (int64_t batch : {1, 2, 3, 7, 16, 33}) {
      // Batches of consecutive vectors (wrapping) from two starting points, so that a vector
      // meets the kernels at different positions of the batch.
      for (int64_t first : {int64_t{0}, kVectors - batch / 2 - 1}) {
        std::vector<float> xb;
        std::vector<int64_t> ids;
        for (int64_t i = 0; i < batch; ++i) {
          const int64_t v = (first + i) % kVectors;
          ids.push_back(v);
          xb.insert(xb.end(), x.begin() + v * cols, x.begin() + (v + 1) * cols);
        }
        Tensor y = backend.alloc(Shape{batch, kRows}, DType::F32);
        backend.matmul(w.tensor, conformance::upload_f32(backend, xb, Shape{batch, cols}), y);
        const auto got = backend.to_host_f32(y);
        for (int64_t i = 0; i < batch; ++i) {
          const auto& e = want[static_cast<size_t>(ids[static_cast<size_t>(i)])];
          for (int64_t r = 0; r < kRows; ++r) {
            const float g = got[static_cast<size_t>(i * kRows + r)];
            if (bits(g) == bits(e[static_cast<size_t>(r)])) continue;
            return fmt::format(
                "{} W[{}, {}], batch {} from vector {}, {} threads (seed {}): position {} "
                "(vector {}) row {}: batched {:.9g} vs mat-vec {:.9g}",
                dtype_name(t), kRows, cols, batch, first, threads, seed, i,
                ids[static_cast<size_t>(i)], r, g, e[static_cast<size_t>(r)]);
          }
        }
      }
    }
  }
  return "";
}

// The instruction sets the kernels are dispatched to: every one this CPU has, then without
// AVX3_DL (no VNNI kernels) and without AVX-512 at all, so the portable kernels are held to
// the same rule where the CPU runs them.
std::vector<std::pair<const char*, int64_t>> target_masks() {
  std::vector<std::pair<const char*, int64_t>> masks = {{"best", 0}};
#if HWY_ARCH_X86
  const int64_t supported = hwy::SupportedTargets();
  if (supported & HWY_AVX3_DL) masks.push_back({"no AVX3_DL", supported & ~int64_t{HWY_AVX3_DL}});
  const int64_t no_avx512 = supported & ~int64_t{HWY_AVX3_DL | HWY_AVX3};
  if ((supported & HWY_AVX3) && (no_avx512 & HWY_AVX2)) masks.push_back({"AVX2", no_avx512});
#endif
  return masks;
}

TEST(CpuBatchInvariance, BatchedOutputsAreBitIdenticalToTheMatVec) {
  for (const auto& [name, mask] : target_masks()) {
    hwy::SetSupportedTargetsForTest(mask);
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                    DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                    DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
      EXPECT_EQ(first_mismatch(t), "") << dtype_name(t) << " on " << name;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace torchless
