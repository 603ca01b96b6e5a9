#pragma once
// Text <-> token ids for the Llama family. Two algorithms behind one interface:
//   - "llama": SentencePiece-style BPE (merges by piece score, U+2581 for spaces, a leading
//     space prefix, <0xXX> byte fallback) as llama.cpp's SPM tokenizer: Llama 2, Mistral,
//     stories260K;
//   - "gpt2": byte-level BPE (GPT-2 byte-to-unicode mapping, ranked merges) after a regex
//     pre-tokenizer chosen by pre_type() (tokenizer.ggml.pre): GPT-2, Llama 3, Qwen2,
//     DeepSeek, StarCoder, Falcon...
// Loaded from GGUF metadata, a Hugging Face tokenizer.json directory or a llama2.c tokenizer.bin.
//
// Invalid UTF-8 in encode() input never throws: for "llama" every byte that is not part of a
// valid UTF-8 sequence becomes its <0xXX> byte token (so decode() gives the bytes back); for
// "gpt2" every such byte becomes U+FFFD before pre-tokenization, as llama.cpp does.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace torchless {

class GgufFile;
struct LoadedModel;

// Values of GGUF tokenizer.ggml.token_type (SentencePiece's piece types).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct EncodeOptions {
  std::optional<bool> add_bos;  // unset: the vocabulary's own flag (add_bos())
  std::optional<bool> add_eos;  // unset: the vocabulary's own flag (add_eos())
  // true: control-token text in the input ("<|eot_id|>") becomes that token; false: it is
  // tokenized as plain text. User-defined (added) tokens are always matched, as llama.cpp does.
  bool parse_special = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<int32_t> encode(std::string_view text,
                                      const EncodeOptions& opts = {}) const = 0;
  // Concatenated pieces; control tokens (BOS, EOS...) give nothing, and for "llama" the space
  // prefix that encode() added is removed from the first piece, so decode(encode(x)) == x.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;

  // The raw vocabulary entry ("▁Once", "<0x0A>", "Ġthe"). Throws Error for ids out of range.
  virtual std::string_view token_text(int32_t id) const = 0;
  // The bytes the token decodes to (" Once", "\n", " the"). Control tokens give "" unless
  // `special` is true, then their text. May be an incomplete UTF-8 sequence (byte tokens).
  virtual std::string token_to_piece(int32_t id, bool special = false) const = 0;
  virtual TokenType token_type(int32_t id) const = 0;
  // Exact vocabulary lookup of a raw entry; nullopt when absent.
  virtual std::optional<int32_t> token_id(std::string_view text) const = 0;

  virtual int32_t n_vocab() const = 0;
  // Special ids, -1 when the vocabulary has none.
  virtual int32_t bos() const = 0;
  virtual int32_t eos() const = 0;
  virtual int32_t eot() const = 0;  // end of turn (<|eot_id|>, <|im_end|>, <end_of_turn>)
  virtual int32_t unk() const = 0;
  virtual int32_t pad() const = 0;
  virtual bool add_bos() const = 0;
  virtual bool add_eos() const = 0;
  // EOS, EOT, EOM and the other end-of-generation control tokens of the vocabulary.
  virtual bool is_end_of_generation(int32_t id) const = 0;

  virtual std::string_view model_type() const = 0;  // "llama" or "gpt2"
  virtual std::string_view pre_type() const = 0;    // "default", "llama-bpe", "qwen2", ...
  // The Jinja chat template stored with the vocabulary, when there is one.
  virtual std::optional<std::string> chat_template() const = 0;
};

// Turns ids into text one at a time for streamed output: returns only complete UTF-8, holding
// back the bytes of a character split across tokens until it is complete. Bytes that can never
// form a valid character are emitted as U+FFFD, so the output is always valid UTF-8. Pieces are
// token_to_piece(id): control tokens give nothing and no SentencePiece space prefix is removed
// (a stream usually continues a prompt).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  std::string feed(int32_t id);
  std::string flush();  // what is still held back (an incomplete tail becomes U+FFFD)
  void reset() { pending_.clear(); }

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

// Loaders: each throws Error naming the file and the problem.
std::unique_ptr<Tokenizer> load_tokenizer_from_gguf(const GgufFile& gguf);
// A Hugging Face directory: tokenizer.json (+ tokenizer_config.json for add_bos/add_eos,
// special tokens and chat_template).
std::unique_ptr<Tokenizer> load_tokenizer_from_hf(const std::filesystem::path& dir);
// llama2.c's tokenizer.bin (max_token_length, then per id: f32 score, u32 length, bytes).
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& tokenizer_bin,
                                                  int32_t n_vocab);
// The tokenizer of a loaded model: a GGUF file's own, the tokenizer.json of a Hugging Face
// directory, or for a llama2.c checkpoint the tok<N>.bin (or tokenizer.bin) beside it.
// `tokenizer_path`, when given, overrides it (an HF directory or tokenizer.json, a GGUF file, a
// llama2.c tokenizer.bin).
std::unique_ptr<Tokenizer> load_tokenizer(const LoadedModel& model,
                                          const std::filesystem::path& tokenizer_path = {});

}  // namespace torchless
