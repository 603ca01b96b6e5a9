// SentencePiece-style BPE as llama.cpp's SPM tokenizer: spaces become U+2581, a U+2581 is put
// before the text (at the start and after each special token), then the adjacent pair whose
// concatenation is the highest-scoring vocabulary entry is merged until no pair is in the
// vocabulary; characters left without a token fall back to their <0xXX> byte tokens.
#include <algorithm>
#include <array>
#include <optional>
#include <string>

#include "torchless/tokenizer/bigram_merge.h"
#include "torchless/tokenizer/vocab_tokenizer.h"

namespace torchless {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

std::string escape_spaces(std::string_view text, bool prefix) {
  std::string s;
  s.reserve(text.size() + 3);
  if (prefix) s += kSpace;
  for (char c : text) {
    if (c == ' ') {
      s += kSpace;
    } else {
      s += c;
    }
  }
  return s;
}

// "<0x0A>" -> 0x0A; -1 when `text` is not a byte token's text.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value *= 16;
    if (c >= '0' && c <= '9') {
      value += c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value += c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value += c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return value;
}

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab) : VocabTokenizer(std::move(vocab)) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const std::string name = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      int32_t id = find(name);
      if (id < 0) id = find(std::string(1, static_cast<char>(b)));
      byte_tokens_[b] = id >= 0 ? id : this->vocab().unk;
    }
    word_local_ = spaces_only_lead_pieces();
    build_piece_cache();
  }

 protected:
  void encode_text(std::string_view text, bool after_special,
                   std::vector<int32_t>& out) const override {
    const std::string s = escape_spaces(text, after_special && vocab().add_space_prefix);
    MergeWorkspace ws;
    if (!word_local_) {
      encode_chunk(s, ws, out);
      return;
    }
    // Merging is local: no vocabulary entry contains U+2581 after another character, so no
    // token can span the point before a U+2581 that follows another character. Cutting
    // there gives the same result and keeps the merge queues small (1 MB in well under 1 s).
    size_t begin = 0;
    for (size_t pos = s.find(kSpace, 1); pos != std::string::npos; pos = s.find(kSpace, pos + 1)) {
      if (pos >= begin + kSpace.size() &&
          std::string_view(s).substr(pos - kSpace.size(), kSpace.size()) == kSpace) {
        continue;  // inside a run of spaces ("▁▁▁" pieces exist)
      }
      if (pos > begin) encode_chunk(std::string_view(s).substr(begin, pos - begin), ws, out);
      begin = pos;
    }
    encode_chunk(std::string_view(s).substr(begin), ws, out);
  }

  std::string normal_piece(const VocabToken& token) const override {
    if (token.type == TokenType::Byte) {
      const int b = parse_byte_token(token.text);
      if (b >= 0) return std::string(1, static_cast<char>(b));
      return token.text;
    }
    std::string piece;
    piece.reserve(token.text.size());
    const std::string_view text = token.text;
    for (size_t pos = 0; pos < text.size();) {
      if (text.substr(pos, kSpace.size()) == kSpace) {
        piece += ' ';
        pos += kSpace.size();
      } else {
        piece += text[pos++];
      }
    }
    return piece;
  }

 private:
  void encode_chunk(std::string_view s, MergeWorkspace& ws, std::vector<int32_t>& out) const {
    split_characters(s, ws);
    // The highest-scoring vocabulary entry merges first.
    merge_bigrams(s, ws, [&](std::string_view left, std::string_view right) {
      const int32_t id = find(std::string_view(left.data(), left.size() + right.size()));
      return id >= 0 ? std::optional<double>(vocab().tokens[static_cast<size_t>(id)].score)
                     : std::nullopt;
    });
    const std::vector<MergeSymbol>& symbols = ws.symbols;
    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
      const std::string_view piece = s.substr(symbols[i].start, symbols[i].n);
      const int32_t id = find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (char c : piece) {
        const int32_t byte_id = byte_tokens_[static_cast<uint8_t>(c)];
        if (byte_id >= 0) out.push_back(byte_id);
      }
    }
  }

  // True when no entry has U+2581 after another character (see encode_text).
  bool spaces_only_lead_pieces() const {
    for (const auto& token : vocab().tokens) {
      const std::string_view t = token.text;
      for (size_t p = t.find(kSpace, 1); p != std::string_view::npos; p = t.find(kSpace, p + 1)) {
        if (p < kSpace.size() || t.substr(p - kSpace.size(), kSpace.size()) != kSpace) {
          return false;
        }
      }
    }
    return true;
  }

  bool word_local_ = false;
  std::array<int32_t, 256> byte_tokens_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab) {
  return std::make_unique<SpmTokenizer>(std::move(vocab));
}

}  // namespace torchless
