#include "torchless/tokenizer/vocab_tokenizer.h"

#include <algorithm>

#include "torchless/core/error.h"

namespace torchless {
namespace {

bool is_special_type(TokenType t) {
  return t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

VocabTokenizer::VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  ids_.reserve(vocab_.tokens.size());
  for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
    ids_.insert_or_assign(vocab_.tokens[i].text, static_cast<int32_t>(i));
    if (is_special_type(vocab_.tokens[i].type)) special_tokens_.push_back(static_cast<int32_t>(i));
  }
  // Longest first, so "<|im_end|>" wins over a shorter special that is a part of it.
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(), [this](int32_t a, int32_t b) {
    return vocab_.tokens[a].text.size() > vocab_.tokens[b].text.size();
  });
  eog_.insert(vocab_.eog.begin(), vocab_.eog.end());
}

void VocabTokenizer::build_piece_cache() {
  pieces_.clear();
  pieces_.reserve(vocab_.tokens.size());
  for (const auto& token : vocab_.tokens) {
    switch (token.type) {
      case TokenType::Control:
      case TokenType::Unknown:
      case TokenType::UserDefined:
        pieces_.push_back(token.text);
        break;
      case TokenType::Normal:
      case TokenType::Byte:
        pieces_.push_back(normal_piece(token));
        break;
      default:
        pieces_.emplace_back();
        break;  // unused/undefined pieces decode to nothing
    }
  }
}

void VocabTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= n_vocab()) fail("token id {} is out of range [0, {})", id, n_vocab());
}

std::string_view VocabTokenizer::token_text(int32_t id) const {
  check_id(id);
  return vocab_.tokens[id].text;
}

TokenType VocabTokenizer::token_type(int32_t id) const {
  check_id(id);
  return vocab_.tokens[id].type;
}

std::optional<int32_t> VocabTokenizer::token_id(std::string_view text) const {
  const int32_t id = find(text);
  if (id < 0) return std::nullopt;
  return id;
}

std::string VocabTokenizer::token_to_piece(int32_t id, bool special) const {
  check_id(id);
  const TokenType type = vocab_.tokens[id].type;
  if (!special && (type == TokenType::Control || type == TokenType::Unknown)) return {};
  return pieces_[id];
}

// As llama.cpp's tokenizer_st_partition: each special token, longest first, splits every text
// fragment at each of its occurrences.
std::vector<VocabTokenizer::Fragment> VocabTokenizer::split_special(std::string_view text,
                                                                    bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({0, text.size(), -1});
  std::vector<Fragment> next;
  for (int32_t id : special_tokens_) {
    const VocabToken& token = vocab_.tokens[id];
    // User-defined (added) tokens are always matched; control/unknown only when asked.
    if (!parse_special && token.type != TokenType::UserDefined) continue;
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.begin;
      const size_t end = f.begin + f.length;
      for (;;) {
        const size_t match = text.substr(pos, end - pos).find(token.text);
        if (match == std::string_view::npos) break;
        size_t left_end = pos + match;
        if (token.lstrip) {
          while (left_end > pos && is_ascii_space(text[left_end - 1])) --left_end;
        }
        if (left_end > pos) next.push_back({pos, left_end - pos, -1});
        next.push_back({pos + match, 0, id});
        pos += match + token.text.size();
        if (token.rstrip) {
          while (pos < end && is_ascii_space(text[pos])) ++pos;
        }
      }
      if (pos < end) next.push_back({pos, end - pos, -1});
    }
    fragments.swap(next);
  }
  return fragments;
}

std::vector<int32_t> VocabTokenizer::encode(std::string_view text,
                                            const EncodeOptions& opts) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (opts.add_bos.value_or(vocab_.add_bos) && vocab_.bos >= 0) out.push_back(vocab_.bos);
  bool after_special = true;
  for (const Fragment& f : split_special(text, opts.parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      encode_text(text.substr(f.begin, f.length), after_special, out);
      after_special = false;
    }
  }
  if (opts.add_eos.value_or(vocab_.add_eos) && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string VocabTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  // The space SentencePiece prefixed to the text is not part of it: drop it from the first
  // piece that has text (control tokens such as BOS decode to nothing and do not count).
  bool strip_space = vocab_.add_space_prefix;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, false);
    if (piece.empty()) continue;
    if (strip_space && piece.front() == ' ') piece.erase(0, 1);
    strip_space = false;
    out += piece;
  }
  return out;
}

}  // namespace torchless
