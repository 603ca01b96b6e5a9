#include "torchless/engine/dry_breakers.h"

#include <algorithm>
#include <set>
#include <string_view>

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

}  // namespace

std::vector<std::vector<int32_t>> dry_breaker_sequences(const Tokenizer& tokenizer,
                                                        std::span<const std::string> breakers) {
  std::set<std::vector<int32_t>> sequences;
  EncodeOptions plain;
  plain.add_bos = false;
  plain.add_eos = false;
  for (const std::string& breaker : breakers) {
    if (breaker.empty()) continue;
    for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
      const std::string piece = tokenizer.token_to_piece(id, /*special=*/true);
      if (piece.find(breaker) != std::string::npos) {
        sequences.insert({id});
        continue;
      }
      for (const size_t k : overlaps(piece, breaker)) {
        std::vector<int32_t> sequence = {id};
        const auto tail = tokenizer.encode(std::string_view(breaker).substr(k), plain);
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
