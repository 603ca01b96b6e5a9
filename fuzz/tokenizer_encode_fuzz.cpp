// libFuzzer target for tokenization of arbitrary bytes (invalid UTF-8 included) with two real
// vocabularies: SentencePiece-style "llama" (stories260K) and byte-level BPE "gpt2" (GPT-2),
// loaded once. The first byte picks the vocabulary and the options. encode() never throws on
// any input; decode() must give SentencePiece input bytes back when they are valid UTF-8 (without
// a literal U+2581), and
// the stream decoder must only ever emit valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "torchless/formats/gguf_file.h"
#include "torchless/tokenizer/tokenizer.h"
#include "torchless/tokenizer/utf8.h"

namespace {

std::unique_ptr<torchless::Tokenizer> g_tokenizers[2];

std::unique_ptr<torchless::Tokenizer> load(const std::string& path) {
  try {
    return torchless::load_tokenizer_from_gguf(*torchless::GgufFile::open(path));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_encode_fuzz: cannot load %s: %s\n", path.c_str(), e.what());
    std::abort();
  }
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_encode_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

// The vocabularies come from ../shared relative to the working directory, or from
// TORCHLESS_SHARED_DIR.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("TORCHLESS_SHARED_DIR");
  const std::string shared = env != nullptr ? env : "../shared";
  g_tokenizers[0] = load(shared + "/models/stories260K.gguf");
  g_tokenizers[1] = load(shared + "/vocab/ggml-vocab-gpt-2.gguf");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const torchless::Tokenizer& tok = *g_tokenizers[data[0] & 1];
  torchless::EncodeOptions opts;
  opts.parse_special = (data[0] & 2) != 0;
  opts.add_bos = (data[0] & 4) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const auto ids = tok.encode(text, opts);
  for (const int32_t id : ids)
    check(id >= 0 && id < tok.n_vocab(), "encode gave an id out of range");
  const std::string decoded = tok.decode(ids);
  // A literal U+2581 in the input is SentencePiece's space marker and decodes to a space, so
  // such inputs cannot round-trip (in SentencePiece and llama.cpp alike).
  const bool has_space_marker = text.find("\xE2\x96\x81") != std::string_view::npos;
  if (tok.model_type() == "llama" && !opts.parse_special && !has_space_marker &&
      torchless::utf8::is_valid(text)) {
    check(decoded == text,
          "decode(encode(x)) != x for valid UTF-8 with the SentencePiece vocabulary");
  }
  torchless::StreamDecoder stream(tok);
  std::string streamed;
  for (const int32_t id : ids) streamed += stream.feed(id);
  streamed += stream.flush();
  check(torchless::utf8::is_valid(streamed), "StreamDecoder emitted invalid UTF-8");
  return 0;
}
