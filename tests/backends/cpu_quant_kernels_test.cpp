// The CPU backend's integer dot-product kernels of quantised weights (cpu_quant_dot.cpp), on
// blocks of random bytes: every code, sub-block scale and high bit a file can hold is reached,
// including the extremes our own quantisers never write (Q6_K scale -128, Q3_K and IQ4_XS
// scale -32),
// which bound the int16/int32 ranges of the kernels. Reference: the blocks dequantised by
// quant.cpp and multiplied in float64.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <hwy/targets.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

struct HalfField {
  size_t offset;
  float lo, hi;  // range of the random value written there
};

// The F16 scale fields of each block type: random bytes there would give Inf, NaN or huge
// scales, so they get random values of a realistic size instead (the offset fields of
// Q4_1/Q5_1 may be negative; K-type mins are subtracted, so dmin stays positive).
std::vector<HalfField> half_fields(DType t) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
      return {{0, 0.001f, 0.02f}};
    case DType::IQ4_NL:
      return {{0, 1e-4f, 2e-3f}};
    case DType::IQ4_XS:
      return {{0, 1e-5f, 1e-4f}};
    case DType::Q4_1:
    case DType::Q5_1:
      return {{0, 0.001f, 0.02f}, {2, -0.2f, 0.2f}};
    case DType::Q4_K:
    case DType::Q5_K:
      return {{0, 1e-4f, 2e-3f}, {2, 1e-4f, 2e-3f}};
    case DType::Q2_K:
      return {{offsetof(BlockQ2_K, d), 1e-3f, 0.02f}, {offsetof(BlockQ2_K, dmin), 1e-3f, 0.02f}};
    case DType::Q3_K:
      return {{offsetof(BlockQ3_K, d), 1e-3f, 0.02f}};
    case DType::Q6_K:
      return {{offsetof(BlockQ6_K, d), 1e-4f, 1e-3f}};
    default:
      return {};
  }
}

// w.values and w.tensor from w.bytes: the blocks dequantised, and uploaded.
conformance::Weights dequantized_upload(Backend& backend, DType t, int64_t rows, int64_t cols,
                                        conformance::Weights w) {
  w.values.resize(static_cast<size_t>(rows * cols));
  const size_t row_bytes = dtype_row_bytes(t, cols);
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(t, w.bytes.data() + static_cast<size_t>(r) * row_bytes,
                   w.values.data() + r * cols, cols);
  }
  w.tensor =
      backend.to_device(HostTensorView{Shape{rows, cols}, t, w.bytes.data(), w.bytes.size()});
  return w;
}

conformance::Weights random_block_weights(Backend& backend, DType t, int64_t rows, int64_t cols,
                                          uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  conformance::Weights w;
  w.bytes.resize(dtype_row_bytes(t, cols) * static_cast<size_t>(rows));
  for (std::byte& b : w.bytes) b = static_cast<std::byte>(byte(rng));
  const size_t block_bytes = dtype_row_bytes(t, dtype_block_size(t));
  for (size_t b = 0; b < w.bytes.size(); b += block_bytes) {
    for (const HalfField& f : half_fields(t)) {
      const uint16_t h = fp32_to_fp16(std::uniform_real_distribution<float>(f.lo, f.hi)(rng));
      std::memcpy(w.bytes.data() + b + f.offset, &h, sizeof h);
    }
  }
  return dequantized_upload(backend, t, rows, cols, std::move(w));
}

void check(Backend& backend, DType t, int64_t rows, int64_t cols, int64_t n) {
  const uint64_t seed =
      static_cast<uint64_t>(t) * 100003u + static_cast<uint64_t>(rows * 7919 + cols * 31 + n);
  const std::string what =
      fmt::format("{} W[{}, {}] x {} tokens (seed {})", dtype_name(t), rows, cols, n, seed);
  SCOPED_TRACE(what);
  const auto w = random_block_weights(backend, t, rows, cols, seed);
  const auto x = conformance::random_floats(static_cast<size_t>(n * cols), seed + 1);
  const auto got = conformance::run_matmul(backend, w.tensor, x, n);
  const auto want = reference::matmul(w.values, x, rows, cols, n);
  conformance::expect_close(
      got, want,
      conformance::matmul_tolerance(w.values, x, rows, cols, n, conformance::activation_block(t)),
      what);
}

constexpr DType kTypes[] = {DType::Q4_K, DType::Q6_K, DType::Q5_K,   DType::Q3_K,
                            DType::Q2_K, DType::Q8_0, DType::Q4_0,   DType::Q4_1,
                            DType::Q5_0, DType::Q5_1, DType::IQ4_XS, DType::IQ4_NL};

// Column counts just past the block multiples the kernels step by (vectors of 8 to 32 lanes,
// blocks of 32 or 256): a single block, one past a power of two, and a long row.
std::vector<int64_t> cols_for(DType t) {
  if (dtype_block_size(t) == kQK_K) return {256, 512 + 256, 4096 + 256};
  return {32, 32 * 5, 32 * 67};
}

TEST(CpuQuantKernels, RandomBlocksMatchFloat64ReferenceForEveryShape) {
  BackendOptions options;
  options.threads = 2;
  CpuBackend backend(options);
  for (DType t : kTypes) {
    for (int64_t cols : cols_for(t)) {
      for (int64_t rows : {1, 3, 17, 33}) {
        for (int64_t n = 1; n <= 9; ++n) check(backend, t, rows, cols, n);
      }
    }
  }
}

// The instruction sets to hold the K-type kernels to: the best this CPU has and, on an x86 CPU
// with AVX-512, AVX2 alone (its int8 kernels, cpu_quant_avx2_k-inl.h).
std::vector<std::pair<const char*, int64_t>> k_kernel_targets() {
  std::vector<std::pair<const char*, int64_t>> masks = {{"best", 0}};
#if HWY_ARCH_X86
  const int64_t supported = hwy::SupportedTargets();
  const int64_t no_avx512 = supported & ~int64_t{HWY_AVX3_DL | HWY_AVX3};
  if ((supported & HWY_AVX3) && (no_avx512 & HWY_AVX2)) masks.push_back({"AVX2", no_avx512});
#endif
  return masks;
}

// The K types' register tiles (4 rows x up to 4 tokens on AVX2, 2 x 4 or rows in lanes
// elsewhere) at the edges the shapes above leave out: row counts that leave 2 or 6 rows of a
// tile, and batches of 10 to 33 tokens, whole tiles plus every token tail.
TEST(CpuQuantKernels, KTypesMatchFloat64ReferenceForRowAndTokenTails) {
  BackendOptions options;
  options.threads = 2;
  for (const auto& [name, mask] : k_kernel_targets()) {
    SCOPED_TRACE(name);
    hwy::SetSupportedTargetsForTest(mask);
    CpuBackend backend(options);
    for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
      for (int64_t rows : {2, 6, 70}) {
        for (int64_t n : {10, 13, 14, 15, 33}) check(backend, t, rows, 768, n);
      }
      for (int64_t cols : {256, 4096 + 256}) check(backend, t, 18, cols, 23);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The legacy types' tiles at their edges: rows past the last 4-row tile or within one 8-row
// group (5, 6, 7: cpu_quant_avx2_legacy-inl.h), odd and even token counts up to 33, and rows
// of 2, 3 and 136 blocks.
TEST(CpuQuantKernels, LegacyTypesAtTileEdges) {
  BackendOptions options;
  options.threads = 2;
  CpuBackend backend(options);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    for (int64_t cols : {32, 64, 96, 128, 4352}) {
      for (int64_t rows : {5, 6, 7, 8, 128}) {
        for (int64_t n : {1, 2, 3, 7, 16, 33}) check(backend, t, rows, cols, n);
      }
    }
  }
}

// Weights of `rows` x `cols` whose bytes are all `byte` except each block's fp16 scales (at the
// byte offsets `halves` within a block), which are 0.01, so that every code is at its extreme.
conformance::Weights filled_weights(CpuBackend& backend, DType t, int64_t rows, int64_t cols,
                                    uint8_t byte, std::initializer_list<size_t> halves) {
  conformance::Weights w;
  w.bytes.assign(dtype_row_bytes(t, cols) * static_cast<size_t>(rows), std::byte{byte});
  const size_t block_bytes = dtype_row_bytes(t, dtype_block_size(t));
  const uint16_t h = fp32_to_fp16(0.01f);
  for (size_t b = 0; b < w.bytes.size(); b += block_bytes) {
    for (size_t offset : halves) std::memcpy(w.bytes.data() + b + offset, &h, sizeof h);
  }
  return dequantized_upload(backend, t, rows, cols, std::move(w));
}

// The mat-vec and a batch of n tokens against the float64 reference, with activations whose
// codes are all 127 or alternate +-127.
void expect_extremes_exact(CpuBackend& backend, const conformance::Weights& w, DType t,
                           int64_t rows, int64_t cols, int64_t n, const std::string& what) {
  for (bool alternate : {false, true}) {
    std::vector<float> x(static_cast<size_t>(n * cols));
    for (size_t i = 0; i < x.size(); ++i) x[i] = alternate && (i % 2) ? -1.5f : 1.5f;
    const std::string label =
        fmt::format("{}{}, {} tokens", what, alternate ? ", alternating activations" : "", n);
    const auto want = reference::matmul(w.values, x, rows, cols, n);
    const auto tol =
        conformance::matmul_tolerance(w.values, x, rows, cols, n, conformance::activation_block(t));
    const std::vector<float> x0(x.begin(), x.begin() + cols);
    conformance::expect_close(conformance::run_matmul(backend, w.tensor, x0, 1),
                              {want.begin(), want.begin() + rows}, tol, label + ", mat-vec");
    conformance::expect_close(conformance::run_matmul(backend, w.tensor, x, n), want, tol, label);
  }
}

// The largest products the integer kernels meet: Q8_0 codes of -128 and Q4_0 nibbles of 0 (-8)
// and 15 (+7), against activations whose codes are all 127 or alternate +-127. They reach the
// int16 bounds: a vpmaddubsw pair of |Q8_0| x 127 (2 x 128 x 127 = 32512), and the AVX2 Q4_0
// kernel's int16 sums of 16 products of 15 x 127 (30480).
TEST(CpuQuantKernels, ExtremeCodesAreExact) {
  CpuBackend backend;
  const int64_t rows = 6, cols = 128;
  struct Case {
    DType t;
    uint8_t byte;
  };
  for (const Case& c : {Case{DType::Q8_0, 0x80}, Case{DType::Q4_0, 0x00}, Case{DType::Q4_0, 0xFF},
                        Case{DType::Q4_0, 0x0F}}) {
    const auto w = filled_weights(backend, c.t, rows, cols, c.byte, {0});
    expect_extremes_exact(backend, w, c.t, rows, cols, 3,
                          fmt::format("{} byte {:#x}", dtype_name(c.t), c.byte));
  }
}

// The K types with every code at its largest (Q4_K 15, Q5_K 31, Q6_K 63) and the largest
// sub-block scales and mins: the AVX2 batch kernel (cpu_quant_avx2_kpack-inl.h) adds 8, 4 and 2
// groups of vpmaddubsw pair sums in int16 before they meet the scales, up to 30480, 31496 and
// 32004. Batches of 16 take that kernel; 3 tokens the in-place tiles.
TEST(CpuQuantKernels, KTypesAtTheInt16BoundsAreExact) {
  BackendOptions options;
  options.threads = 2;
  CpuBackend backend(options);
  const int64_t rows = 12, cols = 512;
  struct Case {
    DType t;
    std::initializer_list<size_t> halves;  // d (and dmin)
  };
  for (const Case& c : {Case{DType::Q4_K, {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)}},
                        Case{DType::Q5_K, {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)}},
                        Case{DType::Q6_K, {offsetof(BlockQ6_K, d)}}}) {
    const auto w = filled_weights(backend, c.t, rows, cols, 0xFF, c.halves);
    for (int64_t n : {3, 16}) {
      expect_extremes_exact(backend, w, c.t, rows, cols, n, std::string(dtype_name(c.t)));
    }
  }
}

TEST(CpuQuantKernels, ZeroActivationsGiveExactZeros) {
  CpuBackend backend;
  for (DType t : kTypes) {
    const int64_t cols = dtype_block_size(t) == kQK_K ? 512 : 64;
    const auto w = random_block_weights(backend, t, 5, cols, 11);
    for (int64_t n : {1, 6}) {
      const auto got =
          conformance::run_matmul(backend, w.tensor, std::vector<float>(n * cols, 0.0f), n);
      for (float v : got) ASSERT_EQ(v, 0.0f) << dtype_name(t) << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace torchless
