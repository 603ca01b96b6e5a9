#include "torchless/backends/thread_communicator.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include <fmt/ranges.h>

#include "torchless/core/error.h"

namespace torchless {
namespace detail {

// A reusable barrier (a generation counter) plus the buffers published for one collective.
struct ThreadGroupState {
  explicit ThreadGroupState(int n) : size(n), data(static_cast<size_t>(n)), counts(data.size()) {}

  void wait() {
    std::unique_lock lock(mutex);
    if (aborted) fail("tensor parallel: the group stopped after another rank failed");
    const uint64_t gen = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      changed.notify_all();
      return;
    }
    changed.wait(lock, [&] { return generation != gen || aborted; });
    if (generation == gen) fail("tensor parallel: the group stopped after another rank failed");
  }

  void abort() {
    std::lock_guard lock(mutex);
    aborted = true;
    changed.notify_all();
  }

  const int size;
  std::vector<float*> data;
  std::vector<int64_t> counts;
  std::mutex mutex;
  std::condition_variable changed;
  int arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
};

}  // namespace detail

std::vector<std::unique_ptr<Communicator>> ThreadCommunicator::create_group(int size) {
  if (size < 1) fail("a tensor-parallel group needs at least one rank, got {}", size);
  auto state = std::make_shared<detail::ThreadGroupState>(size);
  std::vector<std::unique_ptr<Communicator>> group;
  group.reserve(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) group.push_back(std::make_unique<ThreadCommunicator>(state, r));
  return group;
}

ThreadCommunicator::ThreadCommunicator(std::shared_ptr<detail::ThreadGroupState> group, int rank)
    : group_(std::move(group)), rank_(rank) {}

int ThreadCommunicator::size() const {
  return group_->size;
}

float* ThreadCommunicator::host_f32(const Tensor& t, const char* op, const char* what) const {
  float* p = t.data_as<float>();
  if (p == nullptr)
    fail("{}: {} is not in host memory (the thread communicator needs it)", op, what);
  return p;
}

void ThreadCommunicator::publish(float* data, int64_t count) {
  group_->data[static_cast<size_t>(rank_)] = data;
  group_->counts[static_cast<size_t>(rank_)] = count;
  group_->wait();
  // Every rank sees the same counts, so a mismatch makes every rank throw (none is left waiting)
  // with the same message.
  const std::vector<int64_t>& counts = group_->counts;
  if (std::any_of(counts.begin(), counts.end(), [&](int64_t c) { return c != counts[0]; })) {
    fail(
        "tensor parallel: the ranks called a collective with different sizes ({} elements on "
        "ranks 0..{})",
        fmt::join(counts, ", "), group_->size - 1);
  }
}

void ThreadCommunicator::all_reduce_sum(Tensor& x) {
  check_all_reduce(x);
  const int64_t n = x.numel();
  publish(host_f32(x, "all_reduce_sum", "x"), n);
  // This rank's share: elements [first, last); every element has exactly one owner.
  const int64_t share = (n + group_->size - 1) / group_->size;
  const int64_t first = std::min(n, share * rank_);
  const int64_t last = std::min(n, first + share);
  const std::vector<float*>& data = group_->data;
  for (int64_t i = first; i < last; ++i) {
    float sum = data[0][i];
    for (size_t r = 1; r < data.size(); ++r) sum += data[r][i];
    for (float* d : data) d[i] = sum;
  }
  group_->wait();  // nobody reuses its buffer before every share is written
}

void ThreadCommunicator::all_gather(const Tensor& part, Tensor& whole) {
  check_all_gather(part, whole, group_->size);
  const int64_t n = part.numel();
  publish(host_f32(part, "all_gather", "part"), n);
  float* out = host_f32(whole, "all_gather", "whole");
  for (size_t r = 0; r < group_->data.size(); ++r) {
    std::memcpy(out + static_cast<int64_t>(r) * n, group_->data[r],
                static_cast<size_t>(n) * sizeof(float));
  }
  group_->wait();  // nobody overwrites its part before every rank has copied it
}

void ThreadCommunicator::barrier() {
  group_->wait();
}

void ThreadCommunicator::abort() {
  group_->abort();
}

}  // namespace torchless
