// Idiomatic kernels (RMSNorm with threadgroup partials and simd_sum, a float4 mat-vec with
// f32 and f16 weights, a simdgroup_matrix GEMM) against float64 references at awkward sizes,
// and a planted missing barrier that only reverse and shuffled thread orders expose.
#include <gtest/gtest.h>

#include <cmath>

#include "emulator/emulator_test_util.h"
#include "torchless/core/half.h"

namespace torchless::mslemu {
namespace {

using testing::options_with_width;
using testing::random_floats;

class KernelsTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::register_kernels(); }
};

// Rows of y = x * rsqrt(mean(x^2) + eps) * w that differ from the float64 reference.
int wrong_rms_rows(const char* kernel, uint32_t threads, const Options& options, uint32_t rows = 7,
                   uint32_t cols = 1001) {
  const RowsArgs args{rows, cols, 1e-5f};
  const std::vector<float> x = random_floats(size_t{rows} * cols, 21),
                           w = random_floats(cols, 22, 0.5f, 1.5f);
  std::vector<float> y(x.size());
  Dispatch(kernel)
      .bytes(0, &args, sizeof args)
      .buffer(1, const_cast<float*>(x.data()), x.size() * sizeof(float))
      .buffer(2, const_cast<float*>(w.data()), w.size() * sizeof(float))
      .buffer(3, y.data(), y.size() * sizeof(float))
      .threadgroup_memory(0, static_cast<size_t>(options.simd_width) * sizeof(float))
      .dispatch_threadgroups({rows, 1, 1}, {threads, 1, 1}, options);
  int wrong = 0;
  for (uint32_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (uint32_t c = 0; c < cols; ++c) ss += double{x[r * cols + c]} * x[r * cols + c];
    const double scale = 1.0 / std::sqrt(ss / cols + 1e-5);
    bool ok = true;
    for (uint32_t c = 0; c < cols; ++c)
      ok = ok && std::abs(y[r * cols + c] - x[r * cols + c] * scale * w[c]) < 1e-4;
    wrong += !ok;
  }
  return wrong;
}

TEST_F(KernelsTest, RmsNormMatchesReference) {
  for (int width : {32, 64})
    for (uint32_t threads : {256u, 1024u, 96u})
      EXPECT_EQ(wrong_rms_rows("rms_norm_f32", threads, options_with_width(width)), 0)
          << "threads " << threads << " width " << width;
}

TEST_F(KernelsTest, MissingBarrierIsCaughtByReverseAndShuffledOrders) {
  Options forward;
  EXPECT_EQ(wrong_rms_rows("rms_norm_f32_racy", 256, forward), 0);
  Options reverse;
  reverse.thread_order = ThreadOrder::Reverse;
  EXPECT_GT(wrong_rms_rows("rms_norm_f32_racy", 256, reverse), 0);
  int caught = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    Options shuffle;
    shuffle.thread_order = ThreadOrder::Shuffle;
    shuffle.seed = seed;
    caught += wrong_rms_rows("rms_norm_f32_racy", 256, shuffle) > 0;
  }
  EXPECT_GE(caught, 8) << "of 10 shuffled runs";
}

template <class W>
void check_mat_vec(const char* kernel, const std::vector<W>& w, const std::vector<float>& wf,
                   uint32_t rows, uint32_t cols, int width, uint32_t threads) {
  const RowsArgs args{rows, cols, 0.0f};
  const std::vector<float> x = random_floats(cols, 32);
  std::vector<float> y(rows, -7.0f);
  const uint32_t rows_per_group = threads / static_cast<uint32_t>(width);
  Dispatch(kernel)
      .bytes(0, &args, sizeof args)
      .buffer(1, const_cast<W*>(w.data()), w.size() * sizeof(W))
      .buffer(2, const_cast<float*>(x.data()), x.size() * sizeof(float))
      .buffer(3, y.data(), y.size() * sizeof(float))
      .dispatch_threadgroups({(rows + rows_per_group - 1) / rows_per_group, 1, 1}, {threads, 1, 1},
                             options_with_width(width));
  for (uint32_t r = 0; r < rows; ++r) {
    double s = 0;
    for (uint32_t c = 0; c < cols; ++c) s += double{wf[size_t{r} * cols + c]} * x[c];
    EXPECT_NEAR(y[r], s, 1e-3) << kernel << " row " << r << " width " << width;
  }
}

TEST_F(KernelsTest, MatVecMatchesReference) {
  const uint32_t rows = 33, cols = 4100;
  const std::vector<float> w = random_floats(size_t{rows} * cols, 31);
  std::vector<uint16_t> wh(w.size());
  std::vector<float> wh_values(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    wh[i] = fp32_to_fp16(w[i]);
    wh_values[i] = fp16_to_fp32(wh[i]);
  }
  for (int width : {32, 64}) {
    check_mat_vec("mat_vec_f32", w, w, rows, cols, width, 128);
    check_mat_vec("mat_vec_f16", wh, wh_values, rows, cols, width, 128);
  }
}

TEST_F(KernelsTest, SimdgroupMatrixGemmMatchesReference) {
  const GemmArgs args{70, 33, 130};
  const std::vector<float> a = random_floats(size_t{args.m} * args.k, 41),
                           b = random_floats(size_t{args.k} * args.n, 42);
  std::vector<float> c(size_t{args.m} * args.n, -9.0f);
  Dispatch("gemm_f32")
      .bytes(0, &args, sizeof args)
      .buffer(1, const_cast<float*>(a.data()), a.size() * sizeof(float))
      .buffer(2, const_cast<float*>(b.data()), b.size() * sizeof(float))
      .buffer(3, c.data(), c.size() * sizeof(float))
      .threadgroup_memory(0, 32 * 32 * sizeof(float))
      .dispatch_threadgroups({(args.n + 31) / 32, (args.m + 31) / 32, 1}, {128, 1, 1},
                             options_with_width(32));
  for (uint32_t i = 0; i < args.m; ++i)
    for (uint32_t j = 0; j < args.n; ++j) {
      double s = 0;
      for (uint32_t k = 0; k < args.k; ++k) s += double{a[i * args.k + k]} * b[k * args.n + j];
      ASSERT_NEAR(c[i * args.n + j], s, 1e-4) << i << "," << j;
    }
}

TEST_F(KernelsTest, SimdgroupLoadTransposes) {
  const GemmArgs args{8, 8, 24};
  const std::vector<float> at = random_floats(size_t{args.k} * args.m, 43),
                           b = random_floats(size_t{args.k} * args.n, 44);
  std::vector<float> c(64);
  Dispatch("gemm_at_f32")
      .bytes(0, &args, sizeof args)
      .buffer(1, const_cast<float*>(at.data()), at.size() * sizeof(float))
      .buffer(2, const_cast<float*>(b.data()), b.size() * sizeof(float))
      .buffer(3, c.data(), c.size() * sizeof(float))
      .dispatch_threadgroups({1, 1, 1}, {32, 1, 1}, options_with_width(32));
  for (uint32_t i = 0; i < 8; ++i)
    for (uint32_t j = 0; j < 8; ++j) {
      double s = 0;
      for (uint32_t k = 0; k < args.k; ++k) s += double{at[k * args.m + i]} * b[k * args.n + j];
      EXPECT_NEAR(c[i * 8 + j], s, 1e-4) << i << "," << j;
    }
}

// Each `template [[host_name]]` instantiation of instantiations.metal runs under its host name
// with its own template arguments (element type and factor); the template itself is not a kernel.
TEST_F(KernelsTest, HostNameInstantiationsRunTheirOwnVariant) {
  constexpr uint32_t kCount = 37;
  std::vector<float> xf(kCount);
  std::vector<int32_t> xi(kCount);
  for (uint32_t i = 0; i < kCount; ++i) {
    xf[i] = 0.25f * static_cast<float>(i) - 3.0f;
    xi[i] = static_cast<int32_t>(i) - 11;
  }
  const auto run = [&](const char* kernel, void* x) {
    std::vector<float> y(kCount, -1.0f);
    Dispatch(kernel)
        .buffer(0, x, kCount * 4)
        .buffer(1, y.data(), y.size() * sizeof(float))
        .dispatch_threadgroups({1, 1, 1}, {kCount, 1, 1}, options_with_width(32));
    return y;
  };
  const std::vector<float> by3 = run("scale_f32_by_3", xf.data());
  const std::vector<float> by5 = run("scale_i32_by_5", xi.data());
  const std::vector<float> by7 = run("scale_f32_by_7", xf.data());
  for (uint32_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(by3[i], xf[i] * 3.0f) << i;
    EXPECT_EQ(by5[i], static_cast<float>(xi[i] * 5)) << i;
    EXPECT_EQ(by7[i], xf[i] * 7.0f) << i;
  }
  ASSERT_NE(find_kernel("scale_i32_by_5"), nullptr);
  EXPECT_EQ(find_kernel("scale_i32_by_5")->name, "scale_i32_by_5");
  EXPECT_EQ(find_kernel("scale_by"), nullptr);
}

TEST_F(KernelsTest, SeveralOsThreadsGiveTheSameResults) {
  Options o = options_with_width(32);
  o.os_threads = 3;
  EXPECT_EQ(wrong_rms_rows("rms_norm_f32", 128, o, 9, 333), 0);
  o.reverse_threadgroups = true;
  EXPECT_EQ(wrong_rms_rows("rms_norm_f32", 128, o, 9, 333), 0);
}

}  // namespace
}  // namespace torchless::mslemu
