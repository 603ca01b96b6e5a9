// RangeAllocator (the sub-allocator of the CUDA backend's device pool) against a byte map of
// which units are in use: allocations never overlap, stay aligned and inside the capacity,
// releases merge neighbours back into one range, and misuse throws.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "torchless/backends/range_allocator.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

TEST(RangeAllocator, FirstFitAlignedAndMergedOnRelease) {
  RangeAllocator a(1000, 256);  // 3 whole units of 256
  EXPECT_EQ(a.capacity(), 768u);
  EXPECT_EQ(a.allocate(1), 0u);
  EXPECT_EQ(a.allocate(300), 256u);  // two units
  EXPECT_FALSE(a.allocate(1).has_value());
  a.release(0, 1);
  EXPECT_EQ(a.allocate(0), 0u);  // an empty request still takes one unit
  a.release(0, 0);
  a.release(256, 300);
  EXPECT_EQ(a.free_ranges(), 1u);
  EXPECT_EQ(a.largest_free(), 768u);
  EXPECT_EQ(a.allocate(768), 0u);
}

TEST(RangeAllocator, RandomTrafficMatchesAByteMap) {
  constexpr size_t kUnit = 64, kUnits = 200;
  RangeAllocator a(kUnit * kUnits, kUnit);
  std::vector<int> owner(kUnits, -1);  // the independent model: which allocation holds a unit
  struct Live {
    size_t offset, size;
  };
  std::vector<Live> live;
  std::mt19937 rng(1234);
  for (int step = 0; step < 5000; ++step) {
    if (!live.empty() && rng() % 2 == 0) {
      const size_t i = rng() % live.size();
      const Live l = live[i];
      a.release(l.offset, l.size);
      for (size_t u = l.offset / kUnit; u < (l.offset + l.size + kUnit - 1) / kUnit; ++u) {
        owner[u] = -1;
      }
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    const size_t size = 1 + rng() % (12 * kUnit);
    const size_t units = (size + kUnit - 1) / kUnit;
    // The model's first fit: the lowest run of `units` free units.
    size_t want = kUnits, run = 0;
    for (size_t u = 0; u < kUnits && want == kUnits; ++u) {
      run = owner[u] < 0 ? run + 1 : 0;
      if (run == units) want = u + 1 - units;
    }
    const auto got = a.allocate(size);
    if (want == kUnits) {
      EXPECT_FALSE(got.has_value()) << "step " << step;
      continue;
    }
    ASSERT_TRUE(got.has_value()) << "step " << step;
    ASSERT_EQ(*got, want * kUnit) << "step " << step;
    for (size_t u = want; u < want + units; ++u) owner[u] = step;
    live.push_back({*got, size});
  }
  size_t free_units = 0;
  for (int o : owner) free_units += o < 0 ? 1 : 0;
  EXPECT_EQ(a.free_bytes(), free_units * kUnit);
}

TEST(RangeAllocator, MisuseThrows) {
  EXPECT_THROW(RangeAllocator(1024, 48), Error);
  RangeAllocator a(1024, 256);
  const auto offset = a.allocate(256);
  ASSERT_TRUE(offset.has_value());
  a.release(*offset, 256);
  EXPECT_THROW(a.release(*offset, 256), Error);  // twice
  EXPECT_THROW(a.release(1024, 256), Error);     // outside
  EXPECT_THROW(a.release(100, 1), Error);        // not aligned
}

}  // namespace
}  // namespace torchless
