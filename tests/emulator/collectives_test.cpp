// Each simdgroup function and barrier against values computed by hand, at simdgroup widths
// 32 and 64, with a partial last simdgroup and lanes that returned early.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "emulator/emulator_test_util.h"

namespace torchless::mslemu {
namespace {

using testing::error_of;
using testing::options_with_width;
using testing::random_floats;

class CollectivesTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { testing::register_kernels(); }
  int width() const { return GetParam(); }
};

TEST_P(CollectivesTest, SimdFunctionsMatchHandComputedValues) {
  const uint32_t threads = 2 * width() + 19;  // two full simdgroups and a partial one
  const SimdArgs args{threads - 7, 3, 5, 6};  // the last 7 threads return first
  const std::vector<float> x = random_floats(threads, 11);
  std::vector<float> out(threads * kSimdOutputs, -1.0f);
  Dispatch("simd_collectives")
      .bytes(0, &args, sizeof args)
      .buffer(1, const_cast<float*>(x.data()), x.size() * sizeof(float))
      .buffer(2, out.data(), out.size() * sizeof(float))
      .dispatch_threadgroups({1, 1, 1}, {threads, 1, 1}, options_with_width(width()));

  const uint32_t w = static_cast<uint32_t>(width());
  for (uint32_t t = 0; t < args.n; ++t) {
    const uint32_t first = t / w * w, lane = t % w;
    const uint32_t active = std::min(first + w, args.n) - first;  // lanes that did not return
    const auto value = [&](uint32_t l) { return static_cast<double>(x[first + l]); };
    double sum = 0, max = -1e30, min = 1e30, prefix = 0, product = 1;
    bool all = true, any = false;
    for (uint32_t l = 0; l < active; ++l) {
      sum += value(l);
      max = std::max(max, value(l));
      min = std::min(min, value(l));
      if (l < lane) prefix += value(l);
      product *= 1.0 + value(l) * 0.01;
      all = all && value(l) > -0.5;
      any = any || value(l) > 0.9;
    }
    const auto shuffled = [&](int64_t src) {
      return src >= 0 && src < static_cast<int64_t>(active) ? value(static_cast<uint32_t>(src))
                                                            : value(lane);
    };
    const float* o = &out[t * kSimdOutputs];
    SCOPED_TRACE(::testing::Message() << "thread " << t << " width " << w << " seed 11");
    EXPECT_NEAR(o[kOutSum], sum, 1e-4);
    EXPECT_FLOAT_EQ(o[kOutMax], static_cast<float>(max));
    EXPECT_FLOAT_EQ(o[kOutMin], static_cast<float>(min));
    EXPECT_NEAR(o[kOutPrefixExclusive], prefix, 1e-4);
    EXPECT_NEAR(o[kOutPrefixInclusive], prefix + value(lane), 1e-4);
    EXPECT_FLOAT_EQ(o[kOutShuffle], static_cast<float>(shuffled((lane + args.lane) % w)));
    EXPECT_FLOAT_EQ(o[kOutShuffleDown],
                    static_cast<float>(shuffled(lane + args.delta < w ? lane + args.delta : lane)));
    EXPECT_FLOAT_EQ(o[kOutShuffleUp],
                    static_cast<float>(shuffled(lane >= args.delta ? lane - args.delta : lane)));
    EXPECT_FLOAT_EQ(o[kOutShuffleXor],
                    static_cast<float>(shuffled((lane ^ args.mask) < w ? lane ^ args.mask : lane)));
    EXPECT_FLOAT_EQ(o[kOutBroadcast], static_cast<float>(value(args.lane)));
    EXPECT_EQ(o[kOutAll], all ? 1.0f : 0.0f);
    EXPECT_EQ(o[kOutAny], any ? 1.0f : 0.0f);
    EXPECT_NEAR(o[kOutProduct], product, 1e-5);
    EXPECT_FLOAT_EQ(o[kOutBroadcastFirst], static_cast<float>(value(0)));
  }
  for (uint32_t t = args.n; t < threads; ++t) EXPECT_EQ(out[t * kSimdOutputs], -1.0f) << t;
}

TEST_P(CollectivesTest, VectorAndIntegerCollectives) {
  const uint32_t threads = 3 * width();
  const std::vector<float> x = random_floats(threads * 4, 12);
  std::vector<int> k(threads);
  for (uint32_t i = 0; i < threads; ++i) k[i] = static_cast<int>((i * 2654435761u) % 1000) - 400;
  std::vector<float> sums(threads * 4);
  std::vector<int> ints(threads * 4);
  Dispatch("simd_vector_int")
      .buffer(0, const_cast<float*>(x.data()), x.size() * sizeof(float))
      .buffer(1, k.data(), k.size() * sizeof(int))
      .buffer(2, sums.data(), sums.size() * sizeof(float))
      .buffer(3, ints.data(), ints.size() * sizeof(int))
      .dispatch_threadgroups({1, 1, 1}, {threads, 1, 1}, options_with_width(width()));
  const uint32_t w = static_cast<uint32_t>(width());
  for (uint32_t t = 0; t < threads; ++t) {
    const uint32_t first = t / w * w;
    double s[4] = {0, 0, 0, 0};
    int isum = 0, imax = -1000000, ior = 0, ixor = 0;
    for (uint32_t l = first; l < first + w; ++l) {
      for (int c = 0; c < 4; ++c) s[c] += x[l * 4 + c];
      isum += k[l];
      imax = std::max(imax, k[l]);
      ior |= k[l];
      ixor ^= k[l];
    }
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(sums[t * 4 + c], s[c], 1e-5) << t;
    EXPECT_EQ(ints[t * 4 + 0], isum);
    EXPECT_EQ(ints[t * 4 + 1], imax);
    EXPECT_EQ(ints[t * 4 + 2], ior);
    EXPECT_EQ(ints[t * 4 + 3], ixor);
  }
}

TEST_P(CollectivesTest, ThreadgroupTreeSumNeedsEveryBarrier) {
  const uint32_t threads = 256, groups = 7;
  const std::vector<float> x = random_floats(threads * groups, 13);
  std::vector<float> sums(groups);
  Dispatch("threadgroup_tree_sum")
      .buffer(0, const_cast<float*>(x.data()), x.size() * sizeof(float))
      .buffer(1, sums.data(), sums.size() * sizeof(float))
      .threadgroup_memory(0, threads * sizeof(float))
      .dispatch_threadgroups({groups, 1, 1}, {threads, 1, 1}, options_with_width(width()));
  for (uint32_t g = 0; g < groups; ++g) {
    double s = 0;
    for (uint32_t i = 0; i < threads; ++i) s += x[g * threads + i];
    EXPECT_NEAR(sums[g], s, 1e-4) << "group " << g;
  }
}

TEST_P(CollectivesTest, ThreadPositionsOfA3dDispatch) {
  const Size3 grid{3, 2, 2}, group{5, 3, 2};
  const uint32_t tx = grid.x * group.x, ty = grid.y * group.y, tz = grid.z * group.z;
  std::vector<uint32_t> out(tx * ty * tz * 33, 0xdeadbeef);
  Dispatch("thread_positions")
      .buffer(0, out.data(), out.size() * sizeof(uint32_t))
      .dispatch_threadgroups(grid, group, options_with_width(width()));
  const uint32_t w = static_cast<uint32_t>(width()), n = group.x * group.y * group.z;
  for (uint32_t z = 0; z < tz; ++z)
    for (uint32_t y = 0; y < ty; ++y)
      for (uint32_t x = 0; x < tx; ++x) {
        const uint32_t* o = &out[((z * ty + y) * tx + x) * 33];
        const uint32_t local[3] = {x % group.x, y % group.y, z % group.z};
        const uint32_t index = (local[2] * group.y + local[1]) * group.x + local[0];
        const uint32_t expected[33] = {x,
                                       y,
                                       z,
                                       x / group.x,
                                       y / group.y,
                                       z / group.z,
                                       local[0],
                                       local[1],
                                       local[2],
                                       group.x,
                                       group.y,
                                       group.z,
                                       grid.x,
                                       grid.y,
                                       grid.z,
                                       tx,
                                       ty,
                                       tz,
                                       index,
                                       0,
                                       0,
                                       index / w,
                                       0,
                                       0,
                                       index % w,
                                       0,
                                       0,
                                       w,
                                       0,
                                       0,
                                       (n + w - 1) / w,
                                       0,
                                       0};
        for (int i = 0; i < 33; ++i)
          EXPECT_EQ(o[i], expected[i]) << x << "," << y << "," << z << " #" << i;
      }
}

INSTANTIATE_TEST_SUITE_P(Widths, CollectivesTest, ::testing::Values(32, 64),
                         [](const auto& info) { return "Width" + std::to_string(info.param); });

TEST(SimdWidth, OnlyWidths32And64AreAccepted) {
  testing::register_kernels();
  std::vector<uint32_t> out(33);
  const std::string error = error_of([&] {
    Dispatch("thread_positions")
        .buffer(0, out.data(), out.size() * 4)
        .dispatch_threadgroups({1, 1, 1}, {1, 1, 1}, options_with_width(16));
  });
  EXPECT_NE(error.find("simd width 16"), std::string::npos) << error;
}

}  // namespace
}  // namespace torchless::mslemu
