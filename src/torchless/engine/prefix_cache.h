#pragma once
// Prefix caching for the continuous-batching scheduler: full KV blocks of token sequences,
// keyed by the whole token prefix they end, so a request whose prompt starts with tokens
// already computed (a chat's earlier turns, a shared system prompt) reuses those blocks.
// An entry is (parent entry, the block's tokens) -> block; entry ids are never reused, so a
// key names exactly one prefix even after blocks are evicted and recycled. The cache holds one
// reference on each cached block; entries whose block nobody else holds and that no longer
// prefix are evicted least recently used first when the pool runs out.
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "torchless/model/paged_kv_cache.h"

namespace torchless {

class PrefixCache {
 public:
  static constexpr uint64_t kRoot = 0;  // the parent of a sequence's first block

  struct Hit {
    uint64_t entry;
    int32_t block;
  };

  explicit PrefixCache(PagedKvCache& cache) : cache_(cache) {}

  // The cached block of `tokens` (one block's worth) after the prefix `parent` names.
  std::optional<Hit> find(uint64_t parent, std::span<const int32_t> tokens);
  // Caches `block` as holding `tokens` after `parent` (taking a reference on it) and returns
  // the entry; when that prefix is cached already, returns the existing entry and leaves
  // `block` alone.
  uint64_t insert(uint64_t parent, std::span<const int32_t> tokens, int32_t block);
  // Frees the least recently used evictable entry's block; false when there is none.
  bool evict_one();
  int entries() const { return static_cast<int>(entries_.size()); }

 private:
  struct Key {
    uint64_t parent;
    std::vector<int32_t> tokens;
    bool operator==(const Key& other) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& key) const;
  };
  struct Entry {
    uint64_t id;
    int32_t block;
    int children = 0;
    uint64_t last_use = 0;
  };

  PagedKvCache& cache_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
  uint64_t next_id_ = kRoot + 1;
  uint64_t clock_ = 0;
};

}  // namespace torchless
