#include "torchless/engine/dry_breakers.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

namespace torchless {
namespace {

// Lengths k < breaker.size() for which the piece ends with the breaker's first k bytes.
std::vector<size_t> overlaps(std::string_view piece, std::string_view breaker) {
  std::vector<size_t> lengths;
  for (size_t k = 1; k < breaker.size() && k <= piece.size(); ++k) {
    if (piece.substr(piece.size() - k) == breaker.substr(0, k)) lengths.push_back(k);
  }
  return lengths;
}

// Token pieces to ids, for spelling a tail when encode() does not give its exact bytes.
class PieceIndex {
 public:
  explicit PieceIndex(const Tokenizer& tokenizer) {
    for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
      std::string piece = tokenizer.token_to_piece(id);
      if (piece.empty()) continue;
      longest_ = std::max(longest_, piece.size());
      ids_.emplace(std::move(piece), id);
    }
  }
  // Longest pieces first; empty when some byte has no piece.
  std::vector<int32_t> spell(std::string_view text) const {
    std::vector<int32_t> ids;
    for (size_t at = 0; at < text.size();) {
      size_t length = std::min(longest_, text.size() - at);
      auto it = ids_.end();
      for (; length > 0; --length) {
        it = ids_.find(std::string(text.substr(at, length)));
        if (it != ids_.end()) break;
      }
      if (length == 0) return {};
      ids.push_back(it->second);
      at += length;
    }
    return ids;
  }

 private:
  std::unordered_map<std::string, int32_t> ids_;
  size_t longest_ = 0;
};

std::string spelled(const Tokenizer& tokenizer, std::span<const int32_t> ids) {
  std::string text;
  for (const int32_t id : ids) text += tokenizer.token_to_piece(id, /*special=*/true);
  return text;
}

// The tokens of `rest`: the tokenizer's own encoding when it spells exactly `rest` (a
// SentencePiece vocabulary prefixes a space), else the longest-piece spelling.
std::vector<int32_t> tail_tokens(const Tokenizer& tokenizer, std::string_view rest,
                                 std::optional<PieceIndex>& index) {
  EncodeOptions plain;
  plain.add_bos = false;
  plain.add_eos = false;
  std::vector<int32_t> tail = tokenizer.encode(rest, plain);
  if (spelled(tokenizer, tail) == rest) return tail;
  if (!index) index.emplace(tokenizer);
  return index->spell(rest);
}

}  // namespace

std::vector<std::vector<int32_t>> dry_breaker_sequences(const Tokenizer& tokenizer,
                                                        std::span<const std::string> breakers) {
  std::set<std::vector<int32_t>> sequences;
  std::optional<PieceIndex> index;
  for (const std::string& breaker : breakers) {
    if (breaker.empty()) continue;
    for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
      const std::string piece = tokenizer.token_to_piece(id, /*special=*/true);
      if (piece.find(breaker) != std::string::npos) {
        sequences.insert({id});
        continue;
      }
      for (const size_t k : overlaps(piece, breaker)) {
        const auto tail = tail_tokens(tokenizer, std::string_view(breaker).substr(k), index);
        if (tail.empty()) continue;
        std::vector<int32_t> sequence = {id};
        sequence.insert(
            sequence.end(), tail.begin(),
            tail.begin() + static_cast<ptrdiff_t>(std::min(tail.size(), kMaxBreakerTail)));
        sequences.insert(std::move(sequence));
      }
    }
  }
  return {sequences.begin(), sequences.end()};
}

}  // namespace torchless
