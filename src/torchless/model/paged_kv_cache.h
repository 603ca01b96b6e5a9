#pragma once
// The KV cache of the continuous-batching engine: per layer one pool of keys and one of values,
// [n_blocks * block_size, n_kv_heads * head_dim] in F32, F16 or Q8_0 (where the backend's
// supports_paged_kv_dtype says so), cut into blocks of block_size positions. Sequences hold
// blocks through their block tables (block ids, in position order) and take a new block only
// when they grow past the last one, so memory follows the tokens actually used. Blocks are
// reference counted: the prefix cache and several sequences may share a full block of the same
// tokens; a block returns to the free list when its last holder releases it.
//
// Split over the ranks of a tensor-parallel group (Transformer::new_paged_kv_cache), each rank
// has pools of its own KV heads on its backend and this cache keeps the blocks: a block id is
// the same rows in every rank's pools, so one block table serves all ranks.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/formats/model_config.h"

namespace torchless {

inline constexpr int kDefaultKvBlockSize = 16;

class PagedKvCache {
 public:
  PagedKvCache(Backend& backend, const ModelConfig& config, int n_blocks,
               int block_size = kDefaultKvBlockSize, DType dtype = DType::F16);
  // A cache over the ranks' pools (all of the same blocks); it holds no pool itself.
  explicit PagedKvCache(std::vector<std::unique_ptr<PagedKvCache>> ranks);
  ~PagedKvCache();
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;
  PagedKvCache(PagedKvCache&&) noexcept = default;
  PagedKvCache& operator=(PagedKvCache&&) noexcept = default;

  int ranks() const { return ranks_.empty() ? 1 : static_cast<int>(ranks_.size()); }
  PagedKvCache& rank(int r);  // of a split cache (its pools; its blocks are this one's)

  int n_blocks() const { return static_cast<int>(ref_counts_.size()); }
  int block_size() const { return block_size_; }
  DType dtype() const { return dtype_; }
  int free_blocks() const { return static_cast<int>(free_.size()); }
  int used_blocks() const { return n_blocks() - free_blocks(); }
  int ref_count(int32_t block) const;

  // A free block with one reference, or nothing when every block is held.
  std::optional<int32_t> allocate();
  void retain(int32_t block);
  // Drops one reference; the block is free again at zero.
  void release(int32_t block);

  Tensor& keys(int layer) { return keys_.at(static_cast<size_t>(layer)); }
  Tensor& values(int layer) { return values_.at(static_cast<size_t>(layer)); }
  size_t bytes() const;  // of every rank's pools

 private:
  void check_block(int32_t block) const;
  void free_all(int n_blocks);  // n_blocks blocks, all free

  int block_size_;
  DType dtype_;
  std::vector<int> ref_counts_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first
  std::vector<Tensor> keys_;
  std::vector<Tensor> values_;
  std::vector<std::unique_ptr<PagedKvCache>> ranks_;  // a split cache's (keys_, values_ empty)
};

}  // namespace torchless
