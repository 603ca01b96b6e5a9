#include "torchless/engine/prefix_cache.h"

namespace torchless {

size_t PrefixCache::KeyHash::operator()(const Key& key) const {
  // FNV-1a over the parent id and the tokens.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 1099511628211ull;
    }
  };
  mix(key.parent);
  for (const int32_t t : key.tokens) mix(static_cast<uint32_t>(t));
  return static_cast<size_t>(h);
}

std::optional<PrefixCache::Hit> PrefixCache::find(uint64_t parent,
                                                  std::span<const int32_t> tokens) {
  const auto it = entries_.find(Key{parent, {tokens.begin(), tokens.end()}});
  if (it == entries_.end()) return std::nullopt;
  it->second.last_use = ++clock_;
  return Hit{it->second.id, it->second.block};
}

uint64_t PrefixCache::insert(uint64_t parent, std::span<const int32_t> tokens, int32_t block) {
  Key key{parent, {tokens.begin(), tokens.end()}};
  if (const auto it = entries_.find(key); it != entries_.end()) {
    it->second.last_use = ++clock_;
    return it->second.id;
  }
  cache_.retain(block);
  const uint64_t id = next_id_++;
  entries_.emplace(std::move(key), Entry{id, block, 0, ++clock_});
  if (parent != kRoot) {
    for (auto& [k, e] : entries_) {
      if (e.id == parent) ++e.children;
    }
  }
  return id;
}

bool PrefixCache::evict_one() {
  auto victim = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const Entry& e = it->second;
    if (e.children > 0 || cache_.ref_count(e.block) > 1) continue;
    if (victim == entries_.end() || e.last_use < victim->second.last_use) victim = it;
  }
  if (victim == entries_.end()) return false;
  const uint64_t parent = victim->first.parent;
  cache_.release(victim->second.block);
  entries_.erase(victim);
  if (parent != kRoot) {
    for (auto& [k, e] : entries_) {
      if (e.id == parent) --e.children;
    }
  }
  return true;
}

}  // namespace torchless
