#include "torchless/model/paged_kv_cache.h"

#include "torchless/core/error.h"
#include "torchless/model/kv_cache.h"

namespace torchless {

PagedKvCache::PagedKvCache(Backend& backend, const ModelConfig& config, int n_blocks,
                           int block_size, DType dtype)
    : block_size_(block_size), dtype_(dtype) {
  check_kv_dtype(dtype, config);  // F32, F16, or Q8_0 with heads of whole blocks
  if (!backend.supports_paged_kv_dtype(dtype)) {
    fail("the {} backend has no {} paged KV cache; use f16 or f32", backend.name(),
         dtype_name(dtype));
  }
  if (n_blocks <= 0 || block_size <= 0) {
    fail("paged KV cache needs positive block count and size, got {} blocks of {}", n_blocks,
         block_size);
  }
  const int64_t width = static_cast<int64_t>(config.n_kv_heads) * config.head_dim;
  if (width <= 0) {
    fail("paged KV cache: model has no KV heads ({} x {})", config.n_kv_heads, config.head_dim);
  }
  const int64_t rows = static_cast<int64_t>(n_blocks) * block_size;
  for (int layer = 0; layer < config.n_layers; ++layer) {
    keys_.push_back(backend.alloc(Shape{rows, width}, dtype));
    values_.push_back(backend.alloc(Shape{rows, width}, dtype));
  }
  free_all(n_blocks);
}

PagedKvCache::PagedKvCache(std::vector<std::unique_ptr<PagedKvCache>> ranks)
    : ranks_(std::move(ranks)) {
  if (ranks_.empty() || ranks_[0] == nullptr) fail("a split paged KV cache needs a rank");
  const PagedKvCache& first = *ranks_[0];
  block_size_ = first.block_size();
  dtype_ = first.dtype();
  for (const auto& r : ranks_) {
    if (r->n_blocks() != first.n_blocks() || r->block_size() != block_size_) {
      fail("the ranks of a split paged KV cache must have the same blocks");
    }
  }
  free_all(first.n_blocks());
}

PagedKvCache::~PagedKvCache() = default;

void PagedKvCache::free_all(int n_blocks) {
  ref_counts_.assign(static_cast<size_t>(n_blocks), 0);
  free_.clear();
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

PagedKvCache& PagedKvCache::rank(int r) {
  if (ranks_.empty() && r == 0) return *this;
  if (r < 0 || static_cast<size_t>(r) >= ranks_.size()) {
    fail("paged KV cache: no rank {} of {}", r, ranks());
  }
  return *ranks_[static_cast<size_t>(r)];
}

void PagedKvCache::check_block(int32_t block) const {
  if (block < 0 || block >= n_blocks()) {
    fail("KV block {} is outside the pool of {} blocks", block, n_blocks());
  }
}

int PagedKvCache::ref_count(int32_t block) const {
  check_block(block);
  return ref_counts_[static_cast<size_t>(block)];
}

std::optional<int32_t> PagedKvCache::allocate() {
  if (free_.empty()) return std::nullopt;
  const int32_t block = free_.back();
  free_.pop_back();
  ref_counts_[static_cast<size_t>(block)] = 1;
  return block;
}

void PagedKvCache::retain(int32_t block) {
  check_block(block);
  int& count = ref_counts_[static_cast<size_t>(block)];
  if (count == 0) fail("KV block {} is free: it cannot be shared", block);
  ++count;
}

void PagedKvCache::release(int32_t block) {
  check_block(block);
  int& count = ref_counts_[static_cast<size_t>(block)];
  if (count == 0) fail("KV block {} released more often than held", block);
  if (--count == 0) free_.push_back(block);
}

size_t PagedKvCache::bytes() const {
  size_t total = 0;
  for (const auto& r : ranks_) total += r->bytes();
  for (const auto& t : keys_) total += t.nbytes();
  for (const auto& t : values_) total += t.nbytes();
  return total;
}

}  // namespace torchless
