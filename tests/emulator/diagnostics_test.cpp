// The emulator's diagnostics for kernel bugs, each naming the .metal line: a barrier not
// reached by every thread, divergent barriers and simdgroup functions, deadlock, non-uniform
// arguments, stack overflow, and (ASan build) an out-of-bounds read.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "emulator/emulator_test_util.h"

namespace torchless::mslemu {
namespace {

using testing::error_of;
using testing::options_with_width;

const char* const kFaults = "tests/emulator/kernels/faults.metal";

// "faults.metal:<line>" of the first line containing `needle` inside kernel `kernel`.
std::string site(const std::string& kernel, const std::string& needle) {
  const std::string path = std::string(TORCHLESS_SOURCE_DIR) + "/" + kFaults;
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path;
  std::string text;
  bool inside = false;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.find("kernel void " + kernel + "(") != std::string::npos) inside = true;
    if (inside && text.find(needle) != std::string::npos)
      return std::string(kFaults) + ":" + std::to_string(line);
  }
  ADD_FAILURE() << needle << " not found in kernel " << kernel;
  return "";
}

class DiagnosticsTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::register_kernels(); }
  std::vector<float> out_ = std::vector<float>(256, 0.0f);

  std::string run(const char* kernel, uint32_t threads, int width = 32) {
    return error_of([&] {
      Dispatch(kernel)
          .buffer(0, out_.data(), out_.size() * sizeof(float))
          .dispatch_threadgroups({1, 1, 1}, {threads, 1, 1}, options_with_width(width));
    });
  }
};

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "message: " << (haystack)

TEST_F(DiagnosticsTest, BarrierNotReachedByEveryThread) {
  const SimdArgs args{40, 0, 0, 0};
  const std::string e = error_of([&] {
    Dispatch("early_return_before_barrier")
        .bytes(0, &args, sizeof args)
        .buffer(1, out_.data(), out_.size() * sizeof(float))
        .dispatch_threadgroups({2, 1, 1}, {64, 1, 1}, options_with_width(32));
  });
  EXPECT_CONTAINS(e, "threadgroup_barrier at " +
                         site("early_return_before_barrier", "threadgroup_barrier") +
                         " reached by 40 of 64 threads; 24 returned without reaching it");
  EXPECT_CONTAINS(e, "kernel early_return_before_barrier (tests/emulator/kernels/faults.metal:");
  EXPECT_CONTAINS(e, "threadgroup (0, 0, 0)");
}

TEST_F(DiagnosticsTest, DivergentBarrier) {
  const std::string e = run("divergent_barrier", 64);
  EXPECT_CONTAINS(e, "divergent threadgroup_barrier");
  EXPECT_CONTAINS(e, site("divergent_barrier", "threadgroup_barrier"));
}

TEST_F(DiagnosticsTest, Deadlock) {
  const std::string e = run("simd_sum_vs_barrier", 64);
  EXPECT_CONTAINS(e, "deadlock: no thread can proceed; 16 waiting at simd_sum (" +
                         site("simd_sum_vs_barrier", "simd_sum(v)") +
                         ") in simdgroup 0; 32 waiting at threadgroup_barrier (" +
                         site("simd_sum_vs_barrier", "threadgroup_barrier") + ")");
}

TEST_F(DiagnosticsTest, DivergentSimdgroupFunctions) {
  const std::string e = run("divergent_simd_ops", 32);
  EXPECT_CONTAINS(e, "divergent simdgroup operation");
  EXPECT_CONTAINS(e, site("divergent_simd_ops", "simd_sum"));
  EXPECT_CONTAINS(e, site("divergent_simd_ops", "simd_max"));
}

TEST_F(DiagnosticsTest, NonUniformBroadcastLane) {
  const std::string e = run("non_uniform_broadcast", 32);
  EXPECT_CONTAINS(e, "simd_broadcast with a non-uniform lane index at " +
                         site("non_uniform_broadcast", "simd_broadcast"));
}

TEST_F(DiagnosticsTest, NonUniformSimdgroupLoad) {
  std::vector<float> x(128, 1.0f);
  const std::string e = error_of([&] {
    Dispatch("non_uniform_simdgroup_load")
        .buffer(0, x.data(), x.size() * sizeof(float))
        .buffer(1, out_.data(), out_.size() * sizeof(float))
        .dispatch_threadgroups({1, 1, 1}, {32, 1, 1}, options_with_width(32));
  });
  EXPECT_CONTAINS(e, "simdgroup_load with non-uniform arguments at " +
                         site("non_uniform_simdgroup_load", "simdgroup_load(m"));
}

TEST_F(DiagnosticsTest, EmulatorStaysUsableAfterAnError) {
  EXPECT_NE(run("divergent_barrier", 64), "");
  EXPECT_NE(run("simd_sum_vs_barrier", 64), "");
  std::vector<uint32_t> ids(33 * 32);
  Dispatch("thread_positions")
      .buffer(0, ids.data(), ids.size() * 4)
      .dispatch_threadgroups({1, 1, 1}, {32, 1, 1});
  EXPECT_EQ(ids[33 * 31 + 18], 31u);
}

#if !defined(TORCHLESS_ASAN)
// ASan builds leave SIGSEGV to ASan, which reports a stack overflow itself.
TEST_F(DiagnosticsTest, StackOverflowOnTheGuardPage) {
  const SimdArgs args{100000, 0, 0, 0};
  std::vector<float> x(4, 1.0f);
  const std::string e = error_of([&] {
    Dispatch("stack_overflow")
        .bytes(0, &args, sizeof args)
        .buffer(1, x.data(), x.size() * sizeof(float))
        .buffer(2, out_.data(), out_.size() * sizeof(float))
        .dispatch_threadgroups({1, 1, 1}, {32, 1, 1}, options_with_width(32));
  });
  EXPECT_CONTAINS(e, "stack overflow in thread");
  EXPECT_CONTAINS(e, "kernel stack_overflow (" + std::string(kFaults));
}
#endif

#if defined(TORCHLESS_ASAN)
void read_past_row() {
  mslemu_register_emulator_test();
  const RowsArgs args{3, 37, 0.0f};
  std::vector<float> x(args.rows * args.cols, 1.0f), y(args.rows);
  Dispatch("read_past_row")
      .bytes(0, &args, sizeof args)
      .buffer(1, x.data(), x.size() * sizeof(float))
      .buffer(2, y.data(), y.size() * sizeof(float))
      .dispatch_threadgroups({args.rows, 1, 1}, {32, 1, 1});
}

TEST_F(DiagnosticsTest, AsanReportsAnOutOfBoundsReadAtItsMetalLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(read_past_row(), "heap-buffer-overflow.*" + site("read_past_row", "sum += x["));
}
#endif

}  // namespace
}  // namespace torchless::mslemu
