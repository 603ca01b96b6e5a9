#pragma once
// What SentencePiece-style and byte-level BPE tokenizers share: the vocabulary and its lookups,
// splitting the input around special tokens, BOS/EOS, pieces and decoding. Subclasses only
// tokenize a stretch of plain text and say what bytes a normal token stands for.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "torchless/tokenizer/tokenizer.h"
#include "torchless/tokenizer/vocab.h"

namespace torchless {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  std::string_view token_text(int32_t id) const override;
  std::string token_to_piece(int32_t id, bool special) const override;
  TokenType token_type(int32_t id) const override;
  std::optional<int32_t> token_id(std::string_view text) const override;

  int32_t n_vocab() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos() const override { return vocab_.bos; }
  int32_t eos() const override { return vocab_.eos; }
  int32_t eot() const override { return vocab_.eot; }
  int32_t unk() const override { return vocab_.unk; }
  int32_t pad() const override { return vocab_.pad; }
  bool add_bos() const override { return vocab_.add_bos; }
  bool add_eos() const override { return vocab_.add_eos; }
  bool is_end_of_generation(int32_t id) const override { return eog_.contains(id); }
  std::string_view model_type() const override { return vocab_.model_type; }
  std::string_view pre_type() const override { return vocab_.pre_type; }
  std::optional<std::string> chat_template() const override { return vocab_.chat_template; }

 protected:
  // Tokenizes plain text (no special token inside) onto `out`. `after_special`: the text starts
  // the input or follows a special token, where SentencePiece puts its space prefix.
  virtual void encode_text(std::string_view text, bool after_special,
                           std::vector<int32_t>& out) const = 0;
  // The bytes a Normal token stands for.
  virtual std::string normal_piece(const VocabToken& token) const = 0;
  // Fills the piece cache; subclasses call it at the end of their constructor (it needs
  // normal_piece, which is not callable from this constructor).
  void build_piece_cache();

  const Vocab& vocab() const { return vocab_; }
  int32_t find(std::string_view text) const {  // -1 when absent
    auto it = ids_.find(text);
    return it == ids_.end() ? -1 : it->second;
  }
  void check_id(int32_t id) const;

 private:
  struct Fragment {
    size_t begin = 0;
    size_t length = 0;
    int32_t token = -1;  // >= 0: a special token, else text[begin, begin + length)
  };
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;

  Vocab vocab_;
  StringIdMap ids_;
  std::vector<int32_t> special_tokens_;  // control/user-defined/unknown, longest text first
  std::unordered_set<int32_t> eog_;
  std::vector<std::string> pieces_;  // token_to_piece(id, special = true)
};

}  // namespace torchless
