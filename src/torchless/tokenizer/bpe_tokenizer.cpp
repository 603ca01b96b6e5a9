// Byte-level BPE (GPT-2 and its descendants): the text is split into words by the
// pre-tokenizer's regexes, each word's bytes are mapped to GPT-2's printable stand-ins, and
// within a word the adjacent pair with the lowest merge rank is merged until no pair has a rank.
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "torchless/core/error.h"
#include "torchless/tokenizer/bigram_merge.h"
#include "torchless/tokenizer/byte_unicode.h"
#include "torchless/tokenizer/pre_tokenizer.h"
#include "torchless/tokenizer/utf8.h"
#include "torchless/tokenizer/vocab_tokenizer.h"

namespace torchless {
namespace {

constexpr size_t kMaxCachedWordBytes = 64;
constexpr size_t kMaxCachedWords = 1 << 16;

// Joins the two halves of a merge into one key; 0xFF never occurs in valid UTF-8.
constexpr char kMergeSeparator = '\xFF';

std::vector<std::string> regexes_of(const Vocab& vocab) {
  if (vocab.explicit_split_regexes || !vocab.split_regexes.empty()) return vocab.split_regexes;
  return split_regexes_for_pre_type(vocab.pre_type);
}

class BpeTokenizer final : public VocabTokenizer {
 public:
  explicit BpeTokenizer(Vocab vocab)
      : VocabTokenizer(std::move(vocab)), splitter_(regexes_of(this->vocab())) {
    const auto& merges = this->vocab().merges;
    ranks_.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      // The first occurrence of a duplicated merge keeps its (better) rank.
      ranks_.emplace(merges[i].first + kMergeSeparator + merges[i].second, static_cast<int32_t>(i));
    }
    build_piece_cache();
  }

 protected:
  void encode_text(std::string_view text, bool /*after_special*/,
                   std::vector<int32_t>& out) const override {
    // As llama.cpp: each byte outside a valid UTF-8 sequence is read as U+FFFD.
    std::string replaced;
    if (!utf8::is_valid(text)) {
      replaced = utf8::replace_invalid(text);
      text = replaced;
    }
    // Natural text repeats its words: remember each word's ids for the rest of this call.
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;
    std::vector<int32_t> cached_ids;
    std::string word;
    for (std::string_view piece : splitter_.split(text)) {
      if (auto it = cache.find(piece); it != cache.end()) {
        const auto [begin, count] = it->second;
        out.insert(out.end(), cached_ids.begin() + begin, cached_ids.begin() + begin + count);
        continue;
      }
      word = bytes_to_unicode_text(piece);
      const size_t first = out.size();
      encode_word(word, out);
      if (piece.size() <= kMaxCachedWordBytes && cache.size() < kMaxCachedWords) {
        cache.emplace(piece, std::make_pair(cached_ids.size(), out.size() - first));
        cached_ids.insert(cached_ids.end(), out.begin() + first, out.end());
      }
    }
  }

  std::string normal_piece(const VocabToken& token) const override {
    std::string piece;
    const std::string_view text = token.text;
    for (size_t pos = 0; pos < text.size();) {
      size_t n = utf8::valid_sequence_length(text, pos);
      if (n == 0) {
        piece += text[pos++];
        continue;
      }
      const char32_t cp = utf8::decode_at(text, pos, n);
      if (const auto byte = unicode_to_byte(cp)) {
        piece += static_cast<char>(*byte);
      } else {
        piece.append(text.substr(pos, n));  // not a byte stand-in: keep the character
      }
      pos += n;
    }
    return piece;
  }

 private:
  int32_t rank(std::string_view left, std::string_view right, std::string& key) const {
    key.assign(left);
    key += kMergeSeparator;
    key.append(right);
    auto it = ranks_.find(key);
    return it == ranks_.end() ? -1 : it->second;
  }

  void encode_word(const std::string& word, std::vector<int32_t>& out) const {
    if (vocab().ignore_merges) {
      const int32_t id = find(word);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    MergeWorkspace ws;
    split_characters(word, ws);
    std::string key;
    // Lower ranks merge first: the priority is the negated rank.
    merge_bigrams(word, ws, [&](std::string_view left, std::string_view right) {
      const int32_t found = rank(left, right, key);
      return found >= 0 ? std::optional<double>(-static_cast<double>(found)) : std::nullopt;
    });
    const std::vector<MergeSymbol>& symbols = ws.symbols;
    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
      const std::string_view piece(word.data() + symbols[i].start, symbols[i].n);
      const int32_t id = find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      // A merge result missing from the vocabulary (a broken file): emit what characters
      // of it exist, as llama.cpp does, rather than fail.
      for (size_t pos = 0; pos < piece.size();) {
        size_t n = utf8::valid_sequence_length(piece, pos);
        if (n == 0) n = 1;
        const int32_t char_id = find(piece.substr(pos, n));
        if (char_id >= 0) out.push_back(char_id);
        pos += n;
      }
    }
  }

  RegexSplitter splitter_;
  StringIdMap ranks_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab) {
  return std::make_unique<BpeTokenizer>(std::move(vocab));
}

}  // namespace torchless
