#pragma once
// Keys and values of every layer for one sequence, on the backend: per layer two tensors
// [n_ctx, n_kv_heads * head_dim] in F32 or F16. Rows [0, size()) hold the tokens seen so far;
// the Transformer writes new rows through Backend::kv_store and reads them in attention().
#include <cstdint>
#include <memory>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/formats/model_config.h"

namespace torchless {

// Throws Error unless `dtype` can hold this model's keys and values: F32, F16, or Q8_0 when
// head_dim is a multiple of 32 (Q8_0 blocks must not straddle heads).
void check_kv_dtype(DType dtype, const ModelConfig& config);

class KvCache {
 public:
  // dtype: F32, F16 or Q8_0 (see check_kv_dtype). n_ctx: the number of positions the cache can
  // hold.
  KvCache(Backend& backend, const ModelConfig& config, int n_ctx, DType dtype = DType::F32);
  // A cache split over the ranks of a tensor-parallel group (Transformer::new_kv_cache): rank
  // r's cache holds its KV heads on its backend; this one keeps the positions of them all.
  explicit KvCache(std::vector<std::unique_ptr<KvCache>> ranks);
  ~KvCache();

  int n_ctx() const { return n_ctx_; }
  DType dtype() const { return dtype_; }
  // Number of positions holding valid keys and values.
  int size() const { return size_; }
  // Forgets positions >= n (they are overwritten by later tokens); clear() is truncate(0).
  void truncate(int n);
  void clear() { truncate(0); }

  int ranks() const { return ranks_.empty() ? 1 : static_cast<int>(ranks_.size()); }
  KvCache& rank(int r);  // of a split cache

  Tensor& keys(int layer) { return keys_.at(static_cast<size_t>(layer)); }
  Tensor& values(int layer) { return values_.at(static_cast<size_t>(layer)); }
  // Called by the Transformer after it stored positions [pos0, pos0 + n).
  void mark_filled(int pos0, int n);
  size_t bytes() const;
  // What bytes() will be for a cache of these dimensions, before allocating one.
  static uint64_t bytes_needed(const ModelConfig& config, int n_ctx, DType dtype);

 private:
  int n_ctx_ = 0;
  DType dtype_ = DType::F32;
  int size_ = 0;
  std::vector<Tensor> keys_;
  std::vector<Tensor> values_;
  std::vector<std::unique_ptr<KvCache>> ranks_;  // a split cache's (keys_ and values_ empty)
};

}  // namespace torchless
