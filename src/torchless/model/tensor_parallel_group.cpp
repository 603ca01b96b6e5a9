#include "torchless/model/tensor_parallel_group.h"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "torchless/core/error.h"

namespace torchless {

// Persistent threads for ranks 1..n-1: a step is posted to all of them at once and run() returns
// when every rank (rank 0 on the caller's thread) has finished it.
class RankThreads {
 public:
  explicit RankThreads(int n_ranks) {
    for (int r = 1; r < n_ranks; ++r) threads_.emplace_back([this, r] { serve(r); });
  }
  ~RankThreads() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    posted_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // `step` must not throw (the group catches per rank).
  void run(const std::function<void(int)>& step) {
    {
      std::lock_guard lock(mutex_);
      step_ = &step;
      pending_ = static_cast<int>(threads_.size());
      ++generation_;
    }
    posted_.notify_all();
    step(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    step_ = nullptr;
  }

 private:
  void serve(int rank) {
    uint64_t seen = 0;
    while (true) {
      const std::function<void(int)>* step = nullptr;
      {
        std::unique_lock lock(mutex_);
        posted_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        step = step_;
      }
      (*step)(rank);
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable posted_, done_;
  const std::function<void(int)>* step_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

TensorParallelGroup::TensorParallelGroup(const LoadedModel& model, Backend& rank0,
                                         const TensorParallelOptions& options) {
  const int n = options.size;
  check_tensor_parallel(model, n);
  const std::string_view kind = rank0.name();
  if (kind != "cpu" && kind != "cuda") {
    fail("tensor parallelism runs on the cpu and cuda backends, not on {}", kind);
  }
  const int capacity = tensor_parallel_capacity(kind);
  if (n > capacity) fail("--tensor-parallel {} needs {} GPUs; this machine has {}", n, n, capacity);
  if (!options.make_backend) fail("a tensor-parallel group needs a backend for each rank");
  backends_.push_back(&rank0);
  for (int r = 1; r < n; ++r) {
    own_backends_.push_back(options.make_backend(r));
    backends_.push_back(own_backends_.back().get());
  }
  comms_ = make_communicators(backends_);
  threads_ = std::make_unique<RankThreads>(n);
  shards_.resize(static_cast<size_t>(n));
  run([&](int r) {
    const auto i = static_cast<size_t>(r);
    shards_[i] = std::make_unique<Transformer>(model, *backends_[i],
                                               TensorParallelRank{r, n, comms_[i].get()});
  });
  comms_[0]->bind_thread();  // the caller goes on using rank 0's device
}

TensorParallelGroup::~TensorParallelGroup() {
  threads_.reset();  // before the shards and backends the threads may use
}

void TensorParallelGroup::run(const std::function<void(int)>& step) {
  if (failed_) fail("the tensor-parallel group stopped after an error in one of its ranks");
  std::mutex mutex;
  std::exception_ptr first;
  threads_->run([&](int r) {
    try {
      comms_[static_cast<size_t>(r)]->bind_thread();
      step(r);
    } catch (...) {
      {
        std::lock_guard lock(mutex);
        if (!first) first = std::current_exception();
      }
      // The other ranks may wait in a collective this rank will not join.
      comms_[static_cast<size_t>(r)]->abort();
    }
  });
  if (first) {
    failed_ = true;
    std::rethrow_exception(first);
  }
}

std::unique_ptr<KvCache> TensorParallelGroup::new_kv_cache(int n_ctx, DType dtype) {
  std::vector<std::unique_ptr<KvCache>> ranks(shards_.size());
  run([&](int r) {
    const auto i = static_cast<size_t>(r);
    ranks[i] = std::make_unique<KvCache>(*backends_[i], shards_[i]->config(), n_ctx, dtype);
  });
  return std::make_unique<KvCache>(std::move(ranks));
}

std::span<const float> TensorParallelGroup::forward(std::span<const int32_t> tokens, int pos0,
                                                    KvCache& cache, LogitsMode mode) {
  if (cache.ranks() != size()) {
    fail(
        "this KV cache holds {} rank(s) but the model is split over {}: make it with "
        "Transformer::new_kv_cache",
        cache.ranks(), size());
  }
  std::span<const float> logits;
  run([&](int r) {
    const auto out = shards_[static_cast<size_t>(r)]->forward(tokens, pos0, cache.rank(r), mode);
    if (r == 0) logits = out;
  });
  cache.mark_filled(pos0, static_cast<int>(tokens.size()));
  return logits;
}

std::unique_ptr<PagedKvCache> TensorParallelGroup::new_paged_kv_cache(int n_blocks, int block_size,
                                                                      DType dtype) {
  std::vector<std::unique_ptr<PagedKvCache>> ranks(shards_.size());
  run([&](int r) {
    const auto i = static_cast<size_t>(r);
    ranks[i] = std::make_unique<PagedKvCache>(*backends_[i], shards_[i]->config(), n_blocks,
                                              block_size, dtype);
  });
  return std::make_unique<PagedKvCache>(std::move(ranks));
}

std::span<const float> TensorParallelGroup::forward_batch(const TokenBatch& batch,
                                                          PagedKvCache& cache) {
  if (cache.ranks() != size()) {
    fail(
        "this paged KV cache holds {} rank(s) but the model is split over {}: make it with "
        "Transformer::new_paged_kv_cache",
        cache.ranks(), size());
  }
  std::span<const float> logits;
  run([&](int r) {
    const auto out = shards_[static_cast<size_t>(r)]->forward_batch(batch, cache.rank(r));
    if (r == 0) logits = out;
  });
  return logits;
}

}  // namespace torchless
