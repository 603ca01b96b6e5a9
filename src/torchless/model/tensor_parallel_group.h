#pragma once
// The ranks of a model split over a tensor-parallel group in one process (tensor_parallel.h):
// one backend, one communicator, one Transformer slice and one host thread per rank. A forward
// pass runs every rank's slice at once, rank 0 on the calling thread and rank r >= 1 on its own
// thread, and returns rank 0's logits (every rank has all of them after the all-gather).
// The Transformer the caller holds owns this group and forwards to it.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "torchless/model/kv_cache.h"
#include "torchless/model/paged_kv_cache.h"
#include "torchless/model/tensor_parallel.h"
#include "torchless/model/transformer.h"

namespace torchless {

class RankThreads;

class TensorParallelGroup {
 public:
  // Checks that the model splits over options.size ranks, makes the backends of ranks >= 1 and
  // the communicators, and loads each rank's slice on its own thread.
  TensorParallelGroup(const LoadedModel& model, Backend& rank0,
                      const TensorParallelOptions& options);
  ~TensorParallelGroup();
  TensorParallelGroup(const TensorParallelGroup&) = delete;
  TensorParallelGroup& operator=(const TensorParallelGroup&) = delete;

  int size() const { return static_cast<int>(shards_.size()); }
  // One KvCache per rank (its KV heads, on its backend) under one that keeps the positions.
  std::unique_ptr<KvCache> new_kv_cache(int n_ctx, DType dtype);
  // Transformer::forward on every rank; `cache` must come from new_kv_cache().
  std::span<const float> forward(std::span<const int32_t> tokens, int pos0, KvCache& cache,
                                 LogitsMode mode);
  // One PagedKvCache per rank (pools of its KV heads) under one that keeps the blocks.
  std::unique_ptr<PagedKvCache> new_paged_kv_cache(int n_blocks, int block_size, DType dtype);
  // Transformer::forward_batch on every rank, the same batch (tokens, positions and block
  // tables) on each; `cache` must come from new_paged_kv_cache().
  std::span<const float> forward_batch(const TokenBatch& batch, PagedKvCache& cache);

 private:
  // Runs step(rank) for every rank at once; rethrows the first rank's error, after which the
  // group refuses further work (its ranks may have stopped between two collectives).
  void run(const std::function<void(int rank)>& step);

  std::vector<std::unique_ptr<Backend>> own_backends_;  // ranks >= 1
  std::vector<Backend*> backends_;
  std::vector<std::unique_ptr<Communicator>> comms_;
  std::vector<std::unique_ptr<Transformer>> shards_;
  std::unique_ptr<RankThreads> threads_;
  bool failed_ = false;
};

}  // namespace torchless
