#pragma once
// Keys and values of every layer for one sequence, on the backend: per layer two tensors
// [n_ctx, n_kv_heads * head_dim] in F32 or F16. Rows [0, size()) hold the tokens seen so far;
// the Transformer writes new rows through Backend::kv_store and reads them in attention().
#include <cstdint>
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

  int n_ctx() const { return n_ctx_; }
  DType dtype() const { return dtype_; }
  // Number of positions holding valid keys and values.
  int size() const { return size_; }
  // Forgets positions >= n (they are overwritten by later tokens); clear() is truncate(0).
  void truncate(int n);
  void clear() { truncate(0); }

  Tensor& keys(int layer) { return keys_.at(static_cast<size_t>(layer)); }
  Tensor& values(int layer) { return values_.at(static_cast<size_t>(layer)); }
  // Called by the Transformer after it stored positions [pos0, pos0 + n).
  void mark_filled(int pos0, int n);
  size_t bytes() const;
  // What bytes() will be for a cache of these dimensions, before allocating one.
  static uint64_t bytes_needed(const ModelConfig& config, int n_ctx, DType dtype);

 private:
  int n_ctx_;
  DType dtype_;
  int size_ = 0;
  std::vector<Tensor> keys_;
  std::vector<Tensor> values_;
};

}  // namespace torchless
