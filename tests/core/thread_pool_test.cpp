#include "torchless/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace torchless {
namespace {

TEST(ThreadPool, DefaultThreadCountIsPositive) {
  EXPECT_GE(ThreadPool::default_thread_count(), 1);
  ThreadPool pool;
  EXPECT_EQ(pool.size(), ThreadPool::default_thread_count());
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 33, 1000, 4097}) {
      for (int64_t grain : {1, 16, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, grain, [&](int64_t begin, int64_t end, int thread) {
          ASSERT_GE(thread, 0);
          ASSERT_LT(thread, threads);
          ASSERT_LT(begin, end);
          for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1)
              << "threads " << threads << " n " << n << " grain " << grain << " index " << i;
        }
      }
    }
  }
}

TEST(ThreadPool, RespectsTheGrain) {
  ThreadPool pool(3);
  std::atomic<int> short_ranges{0};
  pool.parallel_for(1000, 64, [&](int64_t begin, int64_t end, int) {
    if (end - begin < 64 && end != 1000) short_ranges++;
  });
  EXPECT_EQ(short_ranges.load(), 0);
}

TEST(ThreadPool, ManySmallCallsInARowComplete) {
  // Decode issues hundreds of tiny parallel_for calls per token; none may be lost or hang.
  ThreadPool pool(2);
  int64_t total = 0;
  std::vector<int64_t> partial(2);
  for (int call = 0; call < 20000; ++call) {
    partial.assign(2, 0);
    pool.parallel_for(17, 1, [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) partial[static_cast<size_t>(t)] += i;
    });
    total += partial[0] + partial[1];
  }
  EXPECT_EQ(total, 20000 * (16 * 17 / 2));
}

TEST(ThreadPool, PropagatesExceptions) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100, 1,
                                 [](int64_t b, int64_t, int) {
                                   if (b == 0) throw std::runtime_error("boom");
                                 }),
               std::runtime_error);
  std::atomic<int64_t> sum{0};  // still usable afterwards
  pool.parallel_for(10, 1, [&](int64_t b, int64_t e, int) { sum += e - b; });
  EXPECT_EQ(sum.load(), 10);
}

TEST(ThreadPool, NestedCallsRunSerially) {
  ThreadPool pool(2);
  std::atomic<int64_t> count{0};
  pool.parallel_for(8, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(5, 1, [&](int64_t ib, int64_t ie, int) { count += ie - ib; });
    }
  });
  EXPECT_EQ(count.load(), 40);
}

TEST(ThreadPool, EmptyRangeCallsNothing) {
  ThreadPool pool(2);
  bool called = false;
  pool.parallel_for(0, 1, [&](int64_t, int64_t, int) { called = true; });
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace torchless
