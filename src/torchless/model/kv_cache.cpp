#include "torchless/model/kv_cache.h"

#include "torchless/core/error.h"

namespace torchless {

void check_kv_dtype(DType dtype, const ModelConfig& config) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::Q8_0) {
    fail("KV cache dtype must be f32, f16 or q8_0, got {}", dtype_name(dtype));
  }
  const int64_t block = dtype_block_size(dtype);
  if (config.head_dim % block != 0) {
    fail(
        "a {} KV cache needs a head size that is a multiple of {}, and this model's heads have "
        "{} values: use an f16 KV cache (--kv-type f16)",
        dtype_name(dtype), block, config.head_dim);
  }
}

KvCache::KvCache(Backend& backend, const ModelConfig& config, int n_ctx, DType dtype)
    : n_ctx_(n_ctx), dtype_(dtype) {
  check_kv_dtype(dtype, config);
  if (n_ctx <= 0) fail("KV cache needs a positive context length, got {}", n_ctx);
  const int64_t width = static_cast<int64_t>(config.n_kv_heads) * config.head_dim;
  if (width <= 0)
    fail("KV cache: model has no KV heads ({} x {})", config.n_kv_heads, config.head_dim);
  keys_.reserve(static_cast<size_t>(config.n_layers));
  values_.reserve(static_cast<size_t>(config.n_layers));
  for (int layer = 0; layer < config.n_layers; ++layer) {
    keys_.push_back(backend.alloc(Shape{n_ctx, width}, dtype));
    values_.push_back(backend.alloc(Shape{n_ctx, width}, dtype));
  }
}

KvCache::KvCache(std::vector<std::unique_ptr<KvCache>> ranks) : ranks_(std::move(ranks)) {
  if (ranks_.empty() || ranks_[0] == nullptr) fail("a split KV cache needs at least one rank");
  n_ctx_ = ranks_[0]->n_ctx();
  dtype_ = ranks_[0]->dtype();
}

KvCache::~KvCache() = default;

KvCache& KvCache::rank(int r) {
  if (ranks_.empty() && r == 0) return *this;
  if (r < 0 || static_cast<size_t>(r) >= ranks_.size()) {
    fail("KV cache: no rank {} of {}", r, ranks());
  }
  return *ranks_[static_cast<size_t>(r)];
}

void KvCache::truncate(int n) {
  if (n < 0 || n > size_) fail("cannot truncate a KV cache of {} positions to {}", size_, n);
  size_ = n;
  for (auto& rank : ranks_) rank->truncate(n);
}

void KvCache::mark_filled(int pos0, int n) {
  if (pos0 < 0 || pos0 > size_ || pos0 + n > n_ctx_) {
    fail("KV cache positions [{}, {}) do not extend the {} filled of {}", pos0, pos0 + n, size_,
         n_ctx_);
  }
  size_ = pos0 + n;
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const auto& rank : ranks_) total += rank->bytes();
  for (const auto& t : keys_) total += t.nbytes();
  for (const auto& t : values_) total += t.nbytes();
  return total;
}

uint64_t KvCache::bytes_needed(const ModelConfig& config, int n_ctx, DType dtype) {
  const int64_t width = static_cast<int64_t>(config.n_kv_heads) * config.head_dim;
  return 2 * static_cast<uint64_t>(config.n_layers) * static_cast<uint64_t>(n_ctx) *
         dtype_row_bytes(dtype, width);
}

}  // namespace torchless
