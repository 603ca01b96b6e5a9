#pragma once
// The in-process communicator: the ranks of a group are threads of one process sharing CPU
// memory (the CPU backend's tensors). A collective is two barriers: every rank publishes its
// buffer, then each rank reduces (or copies) its own share of the elements for everyone.
// Deterministic: element i is always summed in rank order, ((x0 + x1) + x2) + ..., by one rank,
// so the result never depends on thread timing and is the same on every rank.
#include <memory>
#include <vector>

#include "torchless/backends/communicator.h"

namespace torchless {

namespace detail {
struct ThreadGroupState;
}

class ThreadCommunicator final : public Communicator {
 public:
  // Communicators of ranks 0..size-1 of one group; each is used by its own thread.
  static std::vector<std::unique_ptr<Communicator>> create_group(int size);

  ThreadCommunicator(std::shared_ptr<detail::ThreadGroupState> group, int rank);

  int rank() const override { return rank_; }
  int size() const override;
  void all_reduce_sum(Tensor& x) override;
  void all_gather(const Tensor& part, Tensor& whole) override;
  void barrier() override;
  void abort() override;

 private:
  // Publishes this rank's buffer and waits until every rank has.
  void publish(float* data, int64_t count);
  float* host_f32(const Tensor& t, const char* op, const char* what) const;

  std::shared_ptr<detail::ThreadGroupState> group_;
  int rank_;
};

}  // namespace torchless
