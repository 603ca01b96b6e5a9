// ThreadCommunicator: all-reduce and all-gather over real threads against a float64 reference
// and against the rank-order float sum it promises (bit for bit, on every rank), for sizes that
// are no multiple of anything; mismatched calls and an aborted group throw instead of hanging.
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/backends/backend.h"
#include "torchless/backends/communicator.h"
#include "torchless/backends/thread_communicator.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

// Runs body(rank, communicator) on one thread per rank; returns each rank's error ("" if none).
std::vector<std::string> run_ranks(int n, const std::function<void(int, Communicator&)>& body) {
  auto comms = ThreadCommunicator::create_group(n);
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        body(r, *comms[static_cast<size_t>(r)]);
      } catch (const Error& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

std::vector<float> random_values(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

struct AllReduceCase {
  int ranks;
  int64_t size;
};

class ThreadAllReduce : public ::testing::TestWithParam<AllReduceCase> {};

TEST_P(ThreadAllReduce, SumsInRankOrderOnEveryRank) {
  // Not a structured binding: the lambda below captures them (clang before 16 cannot).
  const int n = GetParam().ranks;
  const int64_t size = GetParam().size;
  auto backend = init_backend("cpu");
  std::vector<std::vector<float>> inputs;
  for (int r = 0; r < n; ++r)
    inputs.push_back(random_values(size, 100u + static_cast<unsigned>(r)));
  std::vector<std::vector<float>> outputs(static_cast<size_t>(n));
  const auto errors = run_ranks(n, [&](int r, Communicator& comm) {
    EXPECT_EQ(comm.rank(), r);
    EXPECT_EQ(comm.size(), n);
    Tensor x = backend->alloc(Shape{size}, DType::F32);
    std::copy(inputs[static_cast<size_t>(r)].begin(), inputs[static_cast<size_t>(r)].end(),
              x.data_as<float>());
    comm.all_reduce_sum(x);
    outputs[static_cast<size_t>(r)].assign(x.data_as<float>(), x.data_as<float>() + size);
  });
  for (const auto& e : errors) ASSERT_EQ(e, "");
  for (int64_t i = 0; i < size; ++i) {
    const auto k = static_cast<size_t>(i);
    float in_order = inputs[0][k];
    double exact = inputs[0][k];
    for (size_t r = 1; r < inputs.size(); ++r) {
      in_order += inputs[r][k];
      exact += inputs[r][k];
    }
    // float32 sums of n values of magnitude ~3: within n ulps of the float64 sum.
    ASSERT_NEAR(outputs[0][k], exact, 1e-5 * n * (1 + std::abs(exact))) << "element " << i;
    for (int r = 0; r < n; ++r) {
      ASSERT_EQ(outputs[static_cast<size_t>(r)][k], in_order) << "rank " << r << " element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ThreadAllReduce,
                         ::testing::Values(AllReduceCase{1, 5}, AllReduceCase{2, 1},
                                           AllReduceCase{2, 7}, AllReduceCase{3, 1000},
                                           AllReduceCase{4, 3}, AllReduceCase{4, 4097},
                                           AllReduceCase{5, 12345}));

TEST(ThreadCommunicator, AllGatherConcatenatesInRankOrder) {
  constexpr int kRanks = 3;
  constexpr int64_t kPart = 13;
  auto backend = init_backend("cpu");
  std::vector<std::vector<float>> wholes(kRanks);
  const auto errors = run_ranks(kRanks, [&](int r, Communicator& comm) {
    Tensor part = backend->alloc(Shape{kPart}, DType::F32);
    for (int64_t i = 0; i < kPart; ++i) part.data_as<float>()[i] = static_cast<float>(100 * r + i);
    Tensor whole = backend->alloc(Shape{kRanks, kPart}, DType::F32);
    comm.all_gather(part, whole);
    wholes[static_cast<size_t>(r)].assign(whole.data_as<float>(),
                                          whole.data_as<float>() + whole.numel());
  });
  for (const auto& e : errors) ASSERT_EQ(e, "");
  for (const auto& whole : wholes) {
    for (int r = 0; r < kRanks; ++r) {
      for (int64_t i = 0; i < kPart; ++i) {
        EXPECT_EQ(whole[static_cast<size_t>(r * kPart + i)], static_cast<float>(100 * r + i));
      }
    }
  }
}

TEST(ThreadCommunicator, RepeatedCollectivesStayInStep) {
  constexpr int kRanks = 4;
  auto backend = init_backend("cpu");
  std::vector<float> finals(kRanks);
  const auto errors = run_ranks(kRanks, [&](int r, Communicator& comm) {
    Tensor x = backend->alloc(Shape{1}, DType::F32);
    x.data_as<float>()[0] = static_cast<float>(r + 1);
    for (int step = 0; step < 200; ++step) {
      comm.all_reduce_sum(x);  // 10, scaled back to 2.5 each step
      x.data_as<float>()[0] /= kRanks;
      comm.barrier();
    }
    finals[static_cast<size_t>(r)] = x.data_as<float>()[0];
  });
  for (const auto& e : errors) ASSERT_EQ(e, "");
  for (float f : finals) EXPECT_EQ(f, 2.5f);  // (1+2+3+4)/4, a fixed point
}

TEST(ThreadCommunicator, MismatchedSizesThrowOnEveryRank) {
  auto backend = init_backend("cpu");
  const auto errors = run_ranks(2, [&](int r, Communicator& comm) {
    Tensor x = backend->alloc(Shape{r == 0 ? 4 : 5}, DType::F32);
    comm.all_reduce_sum(x);
  });
  for (const auto& e : errors) {
    EXPECT_EQ(e,
              "tensor parallel: the ranks called a collective with different sizes (4, 5 "
              "elements on ranks 0..1)");
  }
}

TEST(ThreadCommunicator, AbortReleasesWaitingRanks) {
  auto backend = init_backend("cpu");
  const auto errors = run_ranks(3, [&](int r, Communicator& comm) {
    if (r == 2) {
      comm.abort();  // this rank failed before its collective
      return;
    }
    Tensor x = backend->alloc(Shape{8}, DType::F32);
    comm.all_reduce_sum(x);
  });
  EXPECT_NE(errors[0].find("another rank failed"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("another rank failed"), std::string::npos) << errors[1];
  EXPECT_EQ(errors[2], "");
}

TEST(ThreadCommunicator, RefusesBadOperands) {
  auto backend = init_backend("cpu");
  auto comms = ThreadCommunicator::create_group(1);
  Tensor ints = backend->alloc(Shape{4}, DType::I32);
  EXPECT_THROW(
      {
        try {
          comms[0]->all_reduce_sum(ints);
        } catch (const Error& e) {
          EXPECT_STREQ(e.what(), "all_reduce_sum: x must be f32, got i32");
          throw;
        }
      },
      Error);
  Tensor part = backend->alloc(Shape{4}, DType::F32);
  Tensor small = backend->alloc(Shape{3}, DType::F32);
  EXPECT_THROW(comms[0]->all_gather(part, small), Error);
  EXPECT_THROW(ThreadCommunicator::create_group(0), Error);
}

TEST(Communicators, ForBackendKinds) {
  auto cpu0 = init_backend("cpu");
  auto cpu1 = init_backend("cpu");
  std::vector<Backend*> ranks = {cpu0.get(), cpu1.get()};
  const auto comms = make_communicators(ranks);
  ASSERT_EQ(comms.size(), 2u);
  EXPECT_EQ(comms[1]->rank(), 1);
  EXPECT_EQ(tensor_parallel_capacity("cpu"), kUnboundedRanks);
  EXPECT_EQ(tensor_parallel_capacity("metal"), 1);
}

}  // namespace
}  // namespace torchless
