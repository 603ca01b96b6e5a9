// llama2.c tokenizer.bin: uint32 max_token_length, then per token float32 score, uint32 byte
// length, bytes (spaces as ' ', not U+2581). Read into the same vocabulary llama.cpp's
// llama2.c converter writes to GGUF, so both files tokenize identically.
#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>

#include "torchless/core/error.h"
#include "torchless/tokenizer/vocab.h"

namespace torchless {
namespace {

class ByteReader {
 public:
  ByteReader(const std::vector<char>& bytes, const std::filesystem::path& path)
      : bytes_(bytes), path_(path) {}
  bool at_end() const { return pos_ == bytes_.size(); }
  template <typename T>
  T read(std::string_view what) {
    T value;
    require(sizeof(T), what);
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string read_string(size_t n, std::string_view what) {
    require(n, what);
    std::string s(bytes_.data() + pos_, n);
    pos_ += n;
    return s;
  }

 private:
  void require(size_t n, std::string_view what) const {
    if (bytes_.size() - pos_ < n) {
      fail("{}: truncated llama2.c tokenizer: {} needs {} bytes at offset {}, file has {}",
           path_.string(), what, n, pos_, bytes_.size());
    }
  }
  const std::vector<char>& bytes_;
  const std::filesystem::path& path_;
  size_t pos_ = 0;
};

std::string escape_spaces(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == ' ') {
      out += "\xE2\x96\x81";
    } else {
      out += c;
    }
  }
  return out;
}

bool is_byte_token(const std::string& text) {
  return text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(text[3])) &&
         std::isxdigit(static_cast<unsigned char>(text[4]));
}

VocabToken convert_token(int32_t id, std::string text, float score) {
  VocabToken token;
  token.score = score;
  if (id == 0) {
    token.text = "<unk>";
    token.type = TokenType::Unknown;
  } else if (id == 1 || id == 2) {
    token.text = id == 1 ? "<s>" : "</s>";  // stored as "\n<s>\n" / "\n</s>\n"
    token.type = TokenType::Control;
  } else {
    token.type = is_byte_token(text) ? TokenType::Byte : TokenType::Normal;
    token.text = escape_spaces(text);
  }
  return token;
}

}  // namespace

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& tokenizer_bin,
                                                  int32_t n_vocab) {
  std::ifstream file(tokenizer_bin, std::ios::binary);
  if (!file) fail("{}: cannot open the llama2.c tokenizer", tokenizer_bin.string());
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                std::istreambuf_iterator<char>());
  ByteReader reader(bytes, tokenizer_bin);
  const auto max_token_length = reader.read<uint32_t>("max_token_length");
  Vocab vocab;
  vocab.source = tokenizer_bin.string();
  vocab.model_type = "llama";
  vocab.pre_type = "default";
  apply_model_defaults(vocab);
  // The file does not store its token count: read to the end, then compare with the
  // checkpoint's (n_vocab <= 0: no checkpoint to compare with).
  for (int32_t id = 0; !reader.at_end(); ++id) {
    const auto score = reader.read<float>("a token score");
    const auto length = reader.read<uint32_t>("a token length");
    if (length > max_token_length) {
      fail("{}: token {} is {} bytes long, more than the header's max_token_length {}",
           tokenizer_bin.string(), id, length, max_token_length);
    }
    vocab.tokens.push_back(convert_token(id, reader.read_string(length, "token text"), score));
  }
  if (n_vocab > 0 && vocab.tokens.size() != static_cast<size_t>(n_vocab)) {
    fail(
        "the tokenizer {} has {} tokens but the model has a vocabulary of {}: pass the "
        "model's own tokenizer with --tokenizer",
        tokenizer_bin.string(), vocab.tokens.size(), n_vocab);
  }
  return make_tokenizer(std::move(vocab));
}

}  // namespace torchless
