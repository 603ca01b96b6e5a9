#pragma once
// The merge loop that BPE and SentencePiece tokenizers share: a word starts as one symbol per
// UTF-8 character, and the adjacent pair of highest priority is merged, again and again, until
// no adjacent pair has a priority. The tokenizers differ only in the priority of a pair: BPE
// ranks merge rules (lower rank first), SentencePiece scores the merged piece (higher first).
// Ties go to the leftmost pair, so results do not depend on heap order.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "torchless/tokenizer/utf8.h"

namespace torchless {

// One piece of the word: text[start, start + n), linked to its neighbours (-1: none).
struct MergeSymbol {
  int prev;
  int next;
  size_t start;
  size_t n;  // 0 once merged into its left neighbour
};

struct MergeBigram {
  int left;
  int right;
  double priority;
  size_t size;  // n of the merged piece; a mismatch later marks the entry stale
};

// Reused across words so that merging allocates nothing once warm.
struct MergeWorkspace {
  std::vector<MergeSymbol> symbols;
  std::vector<MergeBigram> heap;
};

// Fills ws.symbols with one symbol per UTF-8 character of `text`; a byte outside any valid
// sequence is a symbol of its own.
inline void split_characters(std::string_view text, MergeWorkspace& ws) {
  ws.symbols.clear();
  for (size_t pos = 0; pos < text.size();) {
    size_t n = utf8::valid_sequence_length(text, pos);
    if (n == 0) n = 1;
    const int index = static_cast<int>(ws.symbols.size());
    ws.symbols.push_back({index - 1, pos + n == text.size() ? -1 : index + 1, pos, n});
    pos += n;
  }
}

// Merges ws.symbols (from split_characters) in place. priority(left, right) gives the
// priority of merging two adjacent pieces of `text`, or nullopt when they do not merge.
template <typename Priority>
void merge_bigrams(std::string_view text, MergeWorkspace& ws, const Priority& priority) {
  std::vector<MergeSymbol>& symbols = ws.symbols;
  std::vector<MergeBigram>& heap = ws.heap;
  heap.clear();
  const auto order = [](const MergeBigram& a, const MergeBigram& b) {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  };
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const MergeSymbol& l = symbols[static_cast<size_t>(left)];
    const MergeSymbol& r = symbols[static_cast<size_t>(right)];
    const std::optional<double> p = priority(text.substr(l.start, l.n), text.substr(r.start, r.n));
    if (!p) return;
    heap.push_back({left, right, *p, l.n + r.n});
    std::push_heap(heap.begin(), heap.end(), order);
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), order);
    const MergeBigram bigram = heap.back();
    heap.pop_back();
    MergeSymbol& left = symbols[static_cast<size_t>(bigram.left)];
    MergeSymbol& right = symbols[static_cast<size_t>(bigram.right)];
    // Stale entry: one side was merged elsewhere since it was queued.
    if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }
}

}  // namespace torchless
